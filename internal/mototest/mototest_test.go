package mototest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStartAndReset(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want http://127.0.0.1:PORT", s.URL)
	}
	// Create a bucket with a plain S3 REST call (unsigned requests are
	// accepted by moto), see it listed, reset, and see it gone.
	req, err := http.NewRequest(http.MethodPut, s.URL+"/mototest-bucket", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT bucket: status %s", resp.Status)
	}
	if !strings.Contains(listBuckets(t, s), "mototest-bucket") {
		t.Fatal("bucket not listed after creation")
	}
	s.Reset(t)
	if strings.Contains(listBuckets(t, s), "mototest-bucket") {
		t.Fatal("bucket still listed after Reset")
	}
}

func listBuckets(t *testing.T, s *Server) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

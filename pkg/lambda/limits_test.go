package lambda

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckUnzipped(t *testing.T) {
	files := []FileSize{
		{"/a", 10}, {"/b", 70}, {"/c", 30}, {"/d", 70}, {"/e", 5}, {"/f", 1}, {"/g", 40},
	}
	if err := checkUnzipped(226, 226, files); err != nil {
		t.Errorf("checkUnzipped at the limit = %v, want nil", err)
	}
	err := checkUnzipped(227, 226, files)
	var se *SizeError
	if !errors.As(err, &se) {
		t.Fatalf("checkUnzipped over the limit = %v, want *SizeError", err)
	}
	want := []FileSize{{"/b", 70}, {"/d", 70}, {"/g", 40}, {"/c", 30}, {"/a", 10}}
	if diff := cmp.Diff(want, se.Biggest); diff != "" {
		t.Errorf("Biggest (-want +got):\n%s", diff)
	}
	for _, s := range []string{"/b (70 B)", "/a (10 B)", "226 bytes"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if strings.Contains(err.Error(), "/e ") {
		t.Errorf("error %q lists more than 5 files", err)
	}
}

func TestZippedWarning(t *testing.T) {
	if w, ok := zippedWarning(MaxDirectUploadSize, MaxDirectUploadSize); ok {
		t.Errorf("zippedWarning at the limit = %q, want none", w)
	}
	w, ok := zippedWarning(MaxDirectUploadSize+1, MaxDirectUploadSize)
	if !ok || w.Kind != WarnDirectUpload || !strings.Contains(w.Message, "50.0 MB") || strings.Contains(w.Message, "--") {
		t.Errorf("zippedWarning over the limit = %+v, want a WarnDirectUpload naming 50.0 MB and no flag", w)
	}
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KB"}, {MaxUnzippedSize, "250.0 MB"}, {3 << 30, "3.0 GB"},
	}
	for _, tt := range tests {
		if got := humanSize(tt.n); got != tt.want {
			t.Errorf("humanSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestWarningJSON: a warning encodes as its message, as the warnings of
// --json reports always have, and decodes back to it.
func TestWarningJSON(t *testing.T) {
	in := []Warning{{Kind: WarnDirectUpload, Message: `big "zip"`}}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `["big \"zip\""]` {
		t.Fatalf("json.Marshal(%+v) = %s, %v; want the messages as strings", in, b, err)
	}
	var out []Warning
	if err := json.Unmarshal(b, &out); err != nil || len(out) != 1 || out[0].Message != in[0].Message {
		t.Errorf("json.Unmarshal(%s) = %+v, %v; want the message back", b, out, err)
	}
}

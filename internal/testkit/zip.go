package testkit

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"testing"
)

// ZipFile is one entry of a test zip.
type ZipFile struct {
	Name string
	// Mode is the entry's file mode; 0 is 0o644.
	Mode fs.FileMode
	Body []byte
	// Store keeps the body uncompressed (default: deflated).
	Store bool
}

// Zip writes the entries, in order, as a zip.
func Zip(t testing.TB, files ...ZipFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate}
		if f.Store {
			h.Method = zip.Store
		}
		h.SetMode(f.Mode)
		if f.Mode == 0 {
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(f.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ZipPath writes the zip of the entries to function.zip in a temporary
// directory and returns its path.
func ZipPath(t testing.TB, files ...ZipFile) string {
	t.Helper()
	return WriteFile(t, filepath.Join(t.TempDir(), "function.zip"), Zip(t, files...))
}

// JSON is v marshalled, failing the test on an error.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

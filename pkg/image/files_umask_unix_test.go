//go:build unix

package image

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteDirUmask checks that WriteDir writes the image's modes as
// "tar x" without -p does: the process umask applied, setuid, setgid and
// sticky never set. The umask is the process's: the test sets it and puts
// it back.
func TestWriteDirUmask(t *testing.T) {
	img, idx := mustIndex(t, []tf{
		dir("bin"),
		{Name: "bin/open", Body: "o", Mode: 0o777},
		{Name: "bin/suid", Body: "s", Mode: 0o4755},
		{Name: "bin/sgid", Body: "g", Mode: 0o2775},
		{Name: "bin/private", Body: "p", Mode: 0o600},
		{Name: "bin/unreadable", Body: "u", Mode: 0o1000},
	})
	tests := []struct {
		umask int
		want  map[string]fs.FileMode
	}{
		{0o022, map[string]fs.FileMode{"open": 0o755, "suid": 0o755, "sgid": 0o755, "private": 0o600, "unreadable": 0o400}},
		{0o027, map[string]fs.FileMode{"open": 0o750, "suid": 0o750, "sgid": 0o750, "private": 0o600, "unreadable": 0o400}},
		{0o000, map[string]fs.FileMode{"open": 0o777, "suid": 0o755, "sgid": 0o775, "private": 0o600, "unreadable": 0o400}},
	}
	for _, tt := range tests {
		out := t.TempDir()
		old := syscall.Umask(tt.umask)
		err := WriteDir(context.Background(), img, idx, []string{"/bin"}, out)
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("WriteDir with umask %03o: %v", tt.umask, err)
		}
		for name, want := range tt.want {
			fi, err := os.Lstat(filepath.Join(out, "bin", name))
			if err != nil {
				t.Errorf("umask %03o: %v", tt.umask, err)
				continue
			}
			if got := fi.Mode(); got != want {
				t.Errorf("umask %03o: bin/%s mode = %v, want %v", tt.umask, name, got, want)
			}
		}
	}
}

package runtime

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInputFileName(t *testing.T) {
	for suffix, want := range map[string]string{
		".csv":     "input.csv",
		".tar.gz":  "input.tar.gz",
		"_day.csv": "input.csv",
		"":         "input",
		"data":     "input",
		".c$v":     "input",
		".a b":     "input",
		"$(x).csv": "input.csv",
		"/x/.csv":  "input.csv",
		".csv/..":  "input",
		".":        "input",
	} {
		if got := inputFileName(suffix); got != want {
			t.Errorf("inputFileName(%q) = %q, want %q", suffix, got, want)
		}
	}
}

// TestHandleFileInputKeyNotInArgv: with --input file, the key an uploader
// chose never reaches the program's argv, so a shell-form command does not
// run shell code from it: "{input}" is a fixed name plus the trigger's
// suffix.
func TestHandleFileInputKeyNotInArgv(t *testing.T) {
	const key = "input/$(touch pwned).csv"
	data := []byte("a,b\n1,2\n")

	t.Run("plain", func(t *testing.T) {
		s := mustHandler(t, InputFile, "env", "{input}")
		s.put(t, key, data)
		if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, url.QueryEscape(key))); err != nil {
			t.Fatalf("Handle: %v", err)
		}
		out, _ := s.get(t, "output/"+key)
		argv, _, _ := strings.Cut(string(out), "\n")
		if strings.Contains(argv, "touch") || strings.Contains(argv, "pwned") {
			t.Errorf("the program's %s holds text of the key %q", argv, key)
		}
		if !strings.Contains(argv, `/input.csv"]`) {
			t.Errorf("the program's %s, want {input} to end in /input.csv", argv)
		}
	})

	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh here: %v", err)
	}
	for name, args := range map[string][]string{
		"shell code":     {"sh", "-c", "cat {input}"},
		"shell argument": {"sh", "-c", `cat "$1"`, "sh", "{input}"},
	} {
		t.Run(name, func(t *testing.T) {
			// An image package runs the host's shell and cat at their
			// own paths, in a fresh working directory.
			wd := t.TempDir()
			s := mustHandlerFor(t, Manifest{Version: 1, Format: FormatImage, Program: sh, Args: args, WorkDir: wd,
				Env: []string{"PATH=/usr/bin:/bin"}, Input: Input{Mode: InputFile, Prefix: "input/"}})
			s.put(t, key, data)
			if _, err := s.h.Handle(context.Background(), s3Event(s.bucket, url.QueryEscape(key))); err != nil {
				t.Errorf("Handle: %v", err)
			}
			if got, _ := s.get(t, "output/$(touch pwned).csv"); !bytes.Equal(got, data) {
				t.Errorf("output = %q, want the input %q", got, data)
			}
			if _, err := os.Stat(filepath.Join(wd, "pwned")); err == nil {
				t.Error("the key's shell code ran: pwned exists in the working directory")
			}
		})
	}
}

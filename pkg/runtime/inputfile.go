package runtime

import (
	"io"
	"os"
	"path"
	"strings"
)

// With Input.Mode "file" the program reads its input from a file of its
// own, downloaded before it starts, in place of InputPlaceholder.

// inputFileName is the name of the input file: "input" plus the trigger's
// suffix when it is an extension (".csv", ".tar.gz"), else plus the
// suffix's last extension ("_day.csv" → ".csv"); extensions of other
// characters than letters, digits, '.', '_' and '-' are left out. The
// key never counts: every key processed ends in the suffix anyway.
func inputFileName(suffix string) string {
	ext := suffix
	if !strings.HasPrefix(ext, ".") || !plainExt(ext) {
		ext = path.Ext(suffix)
	}
	if !plainExt(ext) {
		return "input"
	}
	return "input" + ext
}

// plainExt reports whether ext is a dot followed by letters, digits, '.',
// '_' or '-', at least one not a dot.
func plainExt(ext string) bool {
	if len(ext) < 2 || ext[0] != '.' || strings.Trim(ext, ".") == "" {
		return false
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// download writes src to a new file at name.
func download(name string, src io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

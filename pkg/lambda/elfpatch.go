package lambda

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/comingout/extract/pkg/image"
)

// maxShebang is the longest "#!" line (without its newline) the Linux kernel
// reads whole: BINPRM_BUF_SIZE is 256 bytes, the line must end within it.
const maxShebang = 255

// InterpTooLongError reports a loader path that does not fit in an ELF
// file's PT_INTERP segment, or a script interpreter that makes the "#!" line
// longer than the kernel reads.
type InterpTooLongError struct {
	// Path is the image path of the file being rewritten.
	Path string
	// Interp is the path that did not fit and Max the room there is for it
	// (PT_INTERP: the segment's size minus the terminating NUL; script: the
	// "#!" line limit).
	Interp string
	Max    int
}

func (e *InterpTooLongError) Error() string {
	return fmt.Sprintf("rewriting the interpreter of %q: %q is %d bytes, only %d fit", e.Path, e.Interp, len(e.Interp), e.Max)
}

// patchInterp copies the ELF file r to w with its PT_INTERP string replaced
// by interp, padded with NULs to the segment's size. It streams: only the
// segment is buffered. The bytes replaced must be the interpreter info says
// (followed by NULs), so a stale or wrong offset is an error, never a
// corrupted program.
func patchInterp(w io.Writer, r io.Reader, path string, info *image.ELFInfo, interp string) error {
	if info == nil || info.InterpSize <= 0 {
		return fmt.Errorf("rewriting the interpreter of %q: no PT_INTERP", path)
	}
	if int64(len(interp))+1 > info.InterpSize {
		return &InterpTooLongError{Path: path, Interp: interp, Max: int(info.InterpSize) - 1}
	}
	if strings.IndexByte(interp, 0) >= 0 {
		return fmt.Errorf("rewriting the interpreter of %q: %q holds a NUL", path, interp)
	}
	if _, err := io.CopyN(w, r, info.InterpOffset); err != nil {
		return fmt.Errorf("copying %q up to PT_INTERP at %d: %w", path, info.InterpOffset, noEOF(err))
	}
	old := make([]byte, info.InterpSize)
	if _, err := io.ReadFull(r, old); err != nil {
		return fmt.Errorf("reading the PT_INTERP of %q at %d: %w", path, info.InterpOffset, noEOF(err))
	}
	got, _, _ := bytes.Cut(old, []byte{0})
	if len(got) == len(old) || (info.Interp != "" && string(got) != info.Interp) {
		return fmt.Errorf("rewriting the interpreter of %q: PT_INTERP at %d holds %q, want %q followed by a NUL", path, info.InterpOffset, got, info.Interp)
	}
	seg := make([]byte, info.InterpSize)
	copy(seg, interp)
	if _, err := w.Write(seg); err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("copying %q after PT_INTERP: %w", path, err)
	}
	return nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// rewriteShebang copies the script r to w with the interpreter of its "#!"
// line replaced by interp; whatever follows the interpreter on that line (its
// optional argument) and the rest of the file are kept byte for byte. It
// returns the interpreter the script named.
func rewriteShebang(w io.Writer, r io.Reader, path, interp string) (string, error) {
	if interp == "" || strings.ContainsAny(interp, " \t\n\r\x00") {
		return "", fmt.Errorf("rewriting the interpreter of %q: %q is not a usable interpreter path", path, interp)
	}
	br := bufio.NewReaderSize(r, 512)
	head, err := br.Peek(2)
	if err != nil || string(head) != "#!" {
		return "", fmt.Errorf("rewriting the interpreter of %q: not a script (no \"#!\")", path)
	}
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("rewriting the interpreter of %q: \"#!\" line longer than %d bytes", path, maxShebang)
		}
		return "", fmt.Errorf("reading %q: %w", path, err)
	}
	body, nl := line, []byte(nil)
	if bytes.HasSuffix(body, []byte{'\n'}) {
		body, nl = body[:len(body)-1], []byte{'\n'}
	}
	rest := body[2:]
	lead := len(rest) - len(bytes.TrimLeft(rest, " \t"))
	rest = rest[lead:]
	end := bytes.IndexAny(rest, " \t")
	if end < 0 {
		end = len(rest)
	}
	old, tail := string(rest[:end]), rest[end:]
	if old == "" {
		return "", fmt.Errorf("rewriting the interpreter of %q: empty \"#!\" line", path)
	}
	out := make([]byte, 0, len(body)+len(interp))
	out = append(out, "#!"...)
	out = append(out, interp...)
	out = append(out, tail...)
	if len(out) > maxShebang {
		return "", &InterpTooLongError{Path: path, Interp: interp, Max: maxShebang - len(tail) - 2}
	}
	out = append(out, nl...)
	if _, err := w.Write(out); err != nil {
		return "", err
	}
	if _, err := io.Copy(w, br); err != nil {
		return "", fmt.Errorf("copying %q: %w", path, err)
	}
	return old, nil
}

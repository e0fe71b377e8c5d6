package image

import "bytes"

// maxShebang is the length of the "#!" line the Linux kernel reads
// (BINPRM_BUF_SIZE, 256 since Linux 5.1).
const maxShebang = 256

// ParseScript parses the "#!" line at the start of head the way the Linux
// kernel does (fs/binfmt_script.c): only the first 256 bytes are looked at;
// the line ends at a newline or at the end of those bytes; spaces and tabs
// after "#!" are skipped; the interpreter is the first word; everything
// after it, with surrounding blanks trimmed, is one optional argument (it is
// not split further). It reports false when head does not start with "#!"
// or names no interpreter.
func ParseScript(head []byte) (*ScriptInfo, bool) {
	if !bytes.HasPrefix(head, []byte("#!")) {
		return nil, false
	}
	if len(head) > maxShebang {
		head = head[:maxShebang]
	}
	line := head[2:]
	truncated := false
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) == maxShebang {
		truncated = true
	}
	// The kernel treats a NUL like the end of the line.
	if i := bytes.IndexByte(line, 0); i >= 0 {
		line, truncated = line[:i], false
	}
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 {
		return nil, false
	}
	interp, rest := line, []byte(nil)
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		interp, rest = line[:i], bytes.Trim(line[i:], " \t")
	} else if truncated {
		// The kernel refuses a line whose interpreter may be cut short.
		return nil, false
	}
	return &ScriptInfo{Interpreter: string(interp), Arg: string(rest)}, true
}

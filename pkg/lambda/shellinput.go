package lambda

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// shellInputArgs reports whether "{input}" stands inside the shell code of
// a shell-form command, where the shell would parse the input file's path
// as code, and returns the command with the path passed as a positional
// parameter instead: ["/bin/sh", "-c", "tool {input}"] becomes
// ["/bin/sh", "-c", `tool "$1"`, "sh", "{input}"].
func shellInputArgs(args []string) ([]string, bool) {
	ci := image.ShellCodeIndex(args)
	if ci < 0 || !strings.Contains(args[ci], xruntime.InputPlaceholder) {
		return nil, false
	}
	out := append([]string(nil), args...)
	// After the code come $0 (the shell's name) and $1, $2...
	operands := len(args) - ci - 1
	if operands == 0 {
		out = append(out, "sh")
		operands = 1
	}
	param := `"$` + strconv.Itoa(operands) + `"`
	if operands > 9 {
		param = `"${` + strconv.Itoa(operands) + `}"`
	}
	code := args[ci]
	for _, quoted := range []string{"'" + xruntime.InputPlaceholder + "'", `"` + xruntime.InputPlaceholder + `"`} {
		code = strings.ReplaceAll(code, quoted, param)
	}
	out[ci] = strings.ReplaceAll(code, xruntime.InputPlaceholder, param)
	return append(out, xruntime.InputPlaceholder), true
}

// warnShellInput warns when the input file's path reaches shell code:
// "{input}" inside the command string of a shell-form command, where the
// shell splits, expands and runs what the path holds instead of passing it
// as one word (the bootstrap names the file itself, but a command must not
// depend on what a path holds).
func (p *packer) warnShellInput(m xruntime.Manifest) {
	if m.Input.Mode != xruntime.InputFile {
		return
	}
	safe, ok := shellInputArgs(p.cmd.Args)
	if !ok {
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(safe) // strings always encode
	p.warn("%s stands inside the shell code %q of the command %q: the shell parses the input file's path as code there; pass the path as an argument instead: %s",
		xruntime.InputPlaceholder, p.cmd.Args[image.ShellCodeIndex(p.cmd.Args)], p.cmd.Args, strings.TrimSpace(b.String()))
}

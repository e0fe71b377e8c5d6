package lambda

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// shellPlaceholderArgs reports whether the placeholder ph ("{input}" or
// "{output}") stands inside the shell code of a shell-form command, where
// the shell would parse the file's path as code, and returns the command
// with the path passed as a positional parameter instead: ["/bin/sh",
// "-c", "tool {input}"] becomes ["/bin/sh", "-c", `tool "$1"`, "sh",
// "{input}"].
func shellPlaceholderArgs(args []string, ph string) ([]string, bool) {
	ci := image.ShellCodeIndex(args)
	if ci < 0 || !strings.Contains(args[ci], ph) {
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
	for _, quoted := range []string{"'" + ph + "'", `"` + ph + `"`} {
		code = strings.ReplaceAll(code, quoted, param)
	}
	out[ci] = strings.ReplaceAll(code, ph, param)
	return append(out, ph), true
}

// shellInputArgs is shellPlaceholderArgs for "{input}".
func shellInputArgs(args []string) ([]string, bool) {
	return shellPlaceholderArgs(args, xruntime.InputPlaceholder)
}

// warnShellInput warns when the input file's path (in the file input mode)
// or the output file's path reaches shell code: "{input}" or "{output}"
// inside the command string of a shell-form command, where the shell
// splits, expands and runs what the path holds instead of passing it as
// one word (the bootstrap names the files itself, but a command must not
// depend on what a path holds).
func (p *packer) warnShellInput(m xruntime.Manifest) {
	var phs []string
	if m.Input.Mode == xruntime.InputFile {
		phs = append(phs, xruntime.InputPlaceholder)
	}
	phs = append(phs, xruntime.OutputPlaceholder)
	args := p.cmd.Args
	var found []string
	for _, ph := range phs {
		if safe, ok := shellPlaceholderArgs(args, ph); ok {
			args = safe
			found = append(found, ph)
		}
	}
	if len(found) == 0 {
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(args) // strings always encode
	p.warn("%s stands inside the shell code %q of the command %q: the shell parses the file's path as code there; pass the path as an argument instead: %s",
		strings.Join(found, " and "), p.cmd.Args[image.ShellCodeIndex(p.cmd.Args)], p.cmd.Args, strings.TrimSpace(b.String()))
}

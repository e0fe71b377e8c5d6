// Command testprog stands in for a packaged program in the runtime's tests.
// It is built static by TestMain; its first argument picks a behaviour:
//
//	cat                 copy stdin to stdout
//	catfile PATH        copy the file at PATH to stdout
//	fail N LINES [OUT]  write OUT bytes to stdout, LINES numbered lines to stderr, exit N
//	stderr LINES        write LINES lines to stderr, then cat
//	head N              copy the first N bytes of stdin to stdout and exit 0
//	sleep               start a child in the same process group, print its
//	                    pid on stderr, then sleep (both until killed)
//	env                 print argv, the working directory and the environment
//	stdout-type         print what its stdout is: "regular file", "pipe", ...
//	zeros N             write N zero bytes to stdout, 64 KiB at a time
//	write N OUT SPEC... for each SPEC, PATH=TEXT writes TEXT to PATH (making
//	                    its directory), PATH#N writes N bytes (i%251), and
//	                    PATH@TARGET makes a symlink; then
//	                    writes OUT, if not empty, as a line to stdout,
//	                    "wrote K" to stderr, and exits N
//	daemon              start a child in a session of its own (setsid) that
//	                    keeps stdin and stdout and sleeps, print its pid on
//	                    stderr and "parent output" on stdout, exit 0
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// modes maps each mode to what it does with the arguments after it.
var modes = map[string]func(args []string){
	"cat":         func([]string) { copyOut(os.Stdin) },
	"catfile":     catFile,
	"fail":        fail,
	"stderr":      stderrThenCat,
	"head":        func(args []string) { copyOut(io.LimitReader(os.Stdin, int64(num(args, 0)))) },
	"sleep":       sleep,
	"daemon":      daemon,
	"write":       func(args []string) { write(num(args, 0), args[1], args[2:]) },
	"env":         env,
	"stdout-type": stdoutType,
	"zeros":       zeros,
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "testprog: no mode")
		os.Exit(2)
	}
	mode, ok := modes[os.Args[1]]
	if !ok {
		fmt.Fprintln(os.Stderr, "testprog: unknown mode", os.Args[1])
		os.Exit(2)
	}
	mode(os.Args[2:])
}

// num returns args[i] as a number, exiting 2 if it is not one.
func num(args []string, i int) int {
	n, err := strconv.Atoi(args[i])
	if err != nil {
		fmt.Fprintln(os.Stderr, "testprog:", err)
		os.Exit(2)
	}
	return n
}

// die reports err and exits 1.
func die(err error) {
	fmt.Fprintln(os.Stderr, "testprog:", err)
	os.Exit(1)
}

func catFile(args []string) {
	f, err := os.Open(args[0])
	if err != nil {
		die(err)
	}
	copyOut(f)
}

func fail(args []string) {
	if len(args) > 2 {
		buf := make([]byte, num(args, 2))
		os.Stdout.Write(buf)
	}
	for i := 1; i <= num(args, 1); i++ {
		fmt.Fprintf(os.Stderr, "error line %d\n", i)
	}
	os.Exit(num(args, 0))
}

func stderrThenCat(args []string) {
	for i := 1; i <= num(args, 0); i++ {
		fmt.Fprintf(os.Stderr, "note %d\n", i)
	}
	copyOut(os.Stdin)
}

func sleep(args []string) {
	if len(args) > 0 && args[0] == "child" {
		time.Sleep(time.Hour)
		return
	}
	c := exec.Command(os.Args[0], "sleep", "child")
	c.Path = "/proc/self/exe"
	c.Stdout = os.Stdout
	if err := c.Start(); err != nil {
		die(err)
	}
	fmt.Fprintf(os.Stderr, "child %d\n", c.Process.Pid)
	time.Sleep(time.Hour)
}

func daemon(args []string) {
	if len(args) > 0 && args[0] == "child" {
		time.Sleep(time.Hour)
		return
	}
	c := exec.Command(os.Args[0], "daemon", "child")
	c.Path = "/proc/self/exe"
	c.Stdin, c.Stdout = os.Stdin, os.Stdout
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		die(err)
	}
	fmt.Fprintf(os.Stderr, "daemon %d\n", c.Process.Pid)
	fmt.Println("parent output")
}

func env([]string) {
	wd, _ := os.Getwd()
	fmt.Printf("argv=%q\nwd=%s\n", os.Args, wd)
	for _, kv := range os.Environ() {
		fmt.Println(kv)
	}
}

func stdoutType([]string) {
	fi, err := os.Stdout.Stat()
	if err != nil {
		die(err)
	}
	switch m := fi.Mode(); {
	case m.IsRegular():
		fmt.Println("regular file")
	case m&os.ModeNamedPipe != 0:
		fmt.Println("pipe")
	default:
		fmt.Println(m.Type().String())
	}
}

func zeros(args []string) {
	buf := make([]byte, 64<<10)
	for left := num(args, 0); left > 0; left -= len(buf) {
		if left < len(buf) {
			buf = buf[:left]
		}
		if _, err := os.Stdout.Write(buf); err != nil {
			die(err)
		}
	}
}

func write(code int, out string, specs []string) {
	for _, spec := range specs {
		var err error
		if p, text, ok := strings.Cut(spec, "="); ok {
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, []byte(text), 0o644)
			}
		} else if p, n, ok := strings.Cut(spec, "#"); ok {
			size, _ := strconv.Atoi(n)
			b := make([]byte, size)
			for i := range b {
				b[i] = byte(i % 251)
			}
			err = os.WriteFile(p, b, 0o644)
		} else if p, target, ok := strings.Cut(spec, "@"); ok {
			err = os.Symlink(target, p)
		}
		if err != nil {
			die(err)
		}
	}
	if out != "" {
		fmt.Println(out)
	}
	fmt.Fprintf(os.Stderr, "wrote %d\n", len(specs))
	os.Exit(code)
}

func copyOut(r io.Reader) {
	if _, err := io.Copy(os.Stdout, r); err != nil {
		die(err)
	}
}

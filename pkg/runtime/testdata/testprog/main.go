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

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "testprog: no mode")
		os.Exit(2)
	}
	arg := func(i int) int {
		n, err := strconv.Atoi(os.Args[i])
		if err != nil {
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(2)
		}
		return n
	}
	switch os.Args[1] {
	case "cat":
		copyOut(os.Stdin)
	case "catfile":
		f, err := os.Open(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(1)
		}
		copyOut(f)
	case "fail":
		if len(os.Args) > 4 {
			buf := make([]byte, arg(4))
			os.Stdout.Write(buf)
		}
		for i := 1; i <= arg(3); i++ {
			fmt.Fprintf(os.Stderr, "error line %d\n", i)
		}
		os.Exit(arg(2))
	case "stderr":
		for i := 1; i <= arg(2); i++ {
			fmt.Fprintf(os.Stderr, "note %d\n", i)
		}
		copyOut(os.Stdin)
	case "head":
		copyOut(io.LimitReader(os.Stdin, int64(arg(2))))
	case "sleep":
		if len(os.Args) > 2 && os.Args[2] == "child" {
			time.Sleep(time.Hour)
			return
		}
		c := exec.Command(os.Args[0], "sleep", "child")
		c.Path = "/proc/self/exe"
		c.Stdout = os.Stdout
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "child %d\n", c.Process.Pid)
		time.Sleep(time.Hour)
	case "daemon":
		if len(os.Args) > 2 && os.Args[2] == "child" {
			time.Sleep(time.Hour)
			return
		}
		c := exec.Command(os.Args[0], "daemon", "child")
		c.Path = "/proc/self/exe"
		c.Stdin, c.Stdout = os.Stdin, os.Stdout
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "daemon %d\n", c.Process.Pid)
		fmt.Println("parent output")
	case "write":
		write(arg(2), os.Args[3], os.Args[4:])
	case "env":
		wd, _ := os.Getwd()
		fmt.Printf("argv=%q\nwd=%s\n", os.Args, wd)
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
	case "stdout-type":
		fi, err := os.Stdout.Stat()
		if err != nil {
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(1)
		}
		switch m := fi.Mode(); {
		case m.IsRegular():
			fmt.Println("regular file")
		case m&os.ModeNamedPipe != 0:
			fmt.Println("pipe")
		default:
			fmt.Println(m.Type().String())
		}
	case "zeros":
		buf := make([]byte, 64<<10)
		for left := arg(2); left > 0; left -= len(buf) {
			if left < len(buf) {
				buf = buf[:left]
			}
			if _, err := os.Stdout.Write(buf); err != nil {
				fmt.Fprintln(os.Stderr, "testprog:", err)
				os.Exit(1)
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "testprog: unknown mode", os.Args[1])
		os.Exit(2)
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
			fmt.Fprintln(os.Stderr, "testprog:", err)
			os.Exit(1)
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
		fmt.Fprintln(os.Stderr, "testprog:", err)
		os.Exit(1)
	}
}

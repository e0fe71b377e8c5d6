// Command democtl is the demo's helper (examples/fortran-momentum/demo.sh):
// it serves a local registry, builds and pushes the momentum image without
// Docker, talks S3 to moto, and builds the S3 event of an upload.
//
//	democtl registry --addr-file FILE           serve a registry on 127.0.0.1:<free port> until killed
//	democtl push --rootfs DIR REF               build the momentum image from DIR, push it to REF;
//	                                            prints "REF@DIGEST COMPRESSED_BYTES UNCOMPRESSED_BYTES"
//	democtl freeport                            print a free TCP port on 127.0.0.1
//	democtl wait URL [--timeout 30s]            wait until URL answers HTTP
//	democtl mb BUCKET                           create an S3 bucket
//	democtl put FILE s3://BUCKET/KEY            upload a file
//	democtl get s3://BUCKET/KEY [FILE|-]        download an object
//	democtl event --function NAME s3://BUCKET/KEY [-o FILE]
//	                                            the event S3 sends to NAME for that upload, from the
//	                                            bucket's notification configuration
//
// S3 commands use the AWS SDK's default configuration (AWS_ENDPOINT_URL...).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/comingout/extract/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "democtl: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// command runs one democtl command on its arguments, with fs, its own
// flag set, to define its flags on.
type command func(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error

var commands = map[string]command{
	"registry": registryCommand,
	"push":     pushCommand,
	"freeport": freeportCommand,
	"wait":     waitCommand,
	"mb":       mbCommand,
	"put":      putCommand,
	"get":      getCommand,
	"event":    eventCommand,
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("usage: democtl registry|push|freeport|wait|mb|put|get|event ...")
	}
	name, args := args[0], args[1:]
	cmd, ok := commands[name]
	if !ok {
		return usageError(fmt.Sprintf("unknown command %q", name))
	}
	return cmd(ctx, flag.NewFlagSet("democtl "+name, flag.ContinueOnError), args, stdout)
}

func registryCommand(ctx context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	addrFile := fs.String("addr-file", "", "write the registry's HOST:PORT to this file once it listens")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	logFile := fs.String("log", "", "log requests to this file")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	return serveRegistry(ctx, *listen, *addrFile, *logFile)
}

func pushCommand(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	rootfs := fs.String("rootfs", "", "the momentum rootfs (testdata/fixtures/fortran-merged)")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if *rootfs == "" {
		return usageError("push: --rootfs is required")
	}
	img, err := demo.BuildImage(*rootfs)
	if err != nil {
		return err
	}
	p, err := demo.Push(ctx, img, fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s %d %d\n", p.Ref, p.Compressed, p.Uncompressed)
	return err
}

func freeportCommand(_ context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = fmt.Fprintln(stdout, port)
	return err
}

func waitCommand(ctx context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	return waitHTTP(ctx, fs.Arg(0), *timeout)
}

func mbCommand(ctx context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	c, err := demo.NewS3(ctx)
	if err != nil {
		return err
	}
	return demo.MakeBucket(ctx, c, fs.Arg(0))
}

func putCommand(ctx context.Context, fs *flag.FlagSet, args []string, _ io.Writer) error {
	if err := parse(fs, args, 2); err != nil {
		return err
	}
	bucket, key, err := splitS3(fs.Arg(1))
	if err != nil {
		return err
	}
	c, err := demo.NewS3(ctx)
	if err != nil {
		return err
	}
	return demo.PutFile(ctx, c, bucket, key, fs.Arg(0))
}

func getCommand(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		return usageError(err.Error())
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageError("usage: democtl get s3://BUCKET/KEY [FILE|-]")
	}
	bucket, key, err := splitS3(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := demo.NewS3(ctx)
	if err != nil {
		return err
	}
	if out := fs.Arg(1); out != "" && out != "-" {
		return writeFile(out, func(w io.Writer) error { return demo.Get(ctx, c, bucket, key, w) })
	}
	return demo.Get(ctx, c, bucket, key, stdout)
}

func eventCommand(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	function := fs.String("function", "", "the function the notification must target")
	out := fs.String("o", "-", "write the event here")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	if *function == "" {
		return usageError("event: --function is required")
	}
	bucket, key, err := splitS3(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := demo.NewS3(ctx)
	if err != nil {
		return err
	}
	ev, err := demo.Event(ctx, c, bucket, key, *function)
	if err != nil {
		return err
	}
	r := ev.Records[0]
	fmt.Fprintf(os.Stderr, "event: %s s3://%s/%s (%d bytes), notification %q\n",
		r.EventName, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Size, r.S3.ConfigurationID)
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return writeFile(*out, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// parse parses flags, before or after the arguments, and wants exactly n
// arguments; fs.Args() holds them afterwards.
func parse(fs *flag.FlagSet, args []string, n int) error {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageError(fs.Name() + ": " + err.Error())
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		return usageError(fmt.Sprintf("%s: want %d argument(s), got %d", fs.Name(), n, len(pos)))
	}
	// Parse the arguments alone once more so fs.Args() returns them.
	return fs.Parse(append([]string{"--"}, pos...))
}

func splitS3(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if ok {
		bucket, key, ok = strings.Cut(rest, "/")
	}
	if !ok || bucket == "" || key == "" {
		return "", "", usageError(fmt.Sprintf("%q: want s3://BUCKET/KEY", u))
	}
	return bucket, key, nil
}

// writeFile writes through a temp file in the target directory, renamed at
// the end, so a failure leaves no partial file.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".democtl-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func serveRegistry(ctx context.Context, listen, addrFile, logFile string) error {
	var logw io.Writer
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	r, err := demo.StartRegistry(listen, logw)
	if err != nil {
		return err
	}
	if addrFile != "" {
		if err := writeFile(addrFile, func(w io.Writer) error { _, err := fmt.Fprintln(w, r.Addr); return err }); err != nil {
			_ = r.Close(context.Background())
			return err
		}
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return r.Close(sctx)
	case err := <-waitErr(r):
		return err
	}
}

func waitErr(r *demo.Registry) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- r.Wait() }()
	return ch
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s: %w", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

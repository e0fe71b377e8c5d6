package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSplitS3(t *testing.T) {
	for _, c := range []struct {
		in, bucket, key string
		ok              bool
	}{
		{"s3://b/input/day1.csv", "b", "input/day1.csv", true},
		{"s3://b/k", "b", "k", true},
		{"s3://b/", "", "", false},
		{"s3://b", "", "", false},
		{"b/k", "", "", false},
		{"s3:///k", "", "", false},
	} {
		bucket, key, err := splitS3(c.in)
		if (err == nil) != c.ok || bucket != c.bucket || key != c.key {
			t.Errorf("splitS3(%q) = %q, %q, %v; want %q, %q, ok=%v", c.in, bucket, key, err, c.bucket, c.key, c.ok)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, args := range [][]string{
		{"--function", "f", "s3://b/k", "-o", "out"},
		{"s3://b/k", "--function", "f", "-o", "out"},
		{"-o", "out", "s3://b/k", "--function=f"},
	} {
		fs := flag.NewFlagSet("event", flag.ContinueOnError)
		fn := fs.String("function", "", "")
		out := fs.String("o", "-", "")
		if err := parse(fs, args, 1); err != nil {
			t.Errorf("parse(%q) = %v", args, err)
			continue
		}
		if *fn != "f" || *out != "out" || fs.NArg() != 1 || fs.Arg(0) != "s3://b/k" {
			t.Errorf("parse(%q): function %q, o %q, args %q; want f, out, [s3://b/k]", args, *fn, *out, fs.Args())
		}
	}
	fs := flag.NewFlagSet("event", flag.ContinueOnError)
	if err := parse(fs, []string{"a", "b"}, 1); err == nil {
		t.Error("parse with 2 arguments, want 1: no error")
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"push", "--rootfs", "x"},   // no REF
		{"push", "127.0.0.1:1/a:b"}, // no --rootfs
		{"put", "only-one"},         // two arguments wanted
		{"get", "not-s3"},           // not s3://
		{"event", "s3://b/k"},       // no --function
		{"wait", "--timeout", "soon", "http://x"}, // bad duration
	} {
		err := run(context.Background(), args, &bytes.Buffer{})
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestFreeportAndRegistry(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"freeport"}, &out); err != nil {
		t.Fatal(err)
	}
	if p, err := strconv.Atoi(strings.TrimSpace(out.String())); err != nil || p <= 0 || p > 65535 {
		t.Fatalf("freeport printed %q, want a port number", out.String())
	}

	// registry writes its address, serves, and stops when its context ends.
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"registry", "--addr-file", addrFile}, &bytes.Buffer{}) }()
	var addr string
	for i := 0; i < 100 && addr == ""; i++ {
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		cancel()
		t.Fatal("registry wrote no address")
	}
	if err := run(context.Background(), []string{"wait", "--timeout", "5s", "http://" + addr + "/v2/"}, &bytes.Buffer{}); err != nil {
		t.Errorf("wait for the registry: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("registry after cancel: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("registry still listens on %s", addr)
	}
	if err := run(context.Background(), []string{"wait", "--timeout", "300ms", "http://" + addr + "/v2/"}, &bytes.Buffer{}); err == nil {
		t.Error("wait for a stopped registry succeeded")
	}
}

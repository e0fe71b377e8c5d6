// Package mototest starts a real moto_server (Python moto 5) for tests that
// talk to AWS: S3, Lambda control plane, IAM, STS. Each Start runs its own
// server on a free 127.0.0.1 port and stops it when the test ends; Shared
// runs one for a whole test binary.
//
// When moto_server is not on PATH the test is skipped with a message saying
// how to install it, except under CI, where it fails (see testkit.Missing):
// CI must never silently skip AWS tests.
package mototest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/comingout/extract/internal/testkit"
)

// Region is the region tests should use with the server.
const Region = "us-east-1"

// AccountID is moto's default account ID (what STS GetCallerIdentity
// returns).
const AccountID = "123456789012"

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:40123".
	URL string

	cmd  *exec.Cmd
	logs *syncBuffer
}

// startTimeout bounds how long Start waits for the server to answer.
const startTimeout = 30 * time.Second

// Start runs moto_server on a free port, waits until it answers, and stops it
// (process group killed, waited for) at t.Cleanup. The server's output is
// logged with t.Log if the test fails.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := startRetrying(lookPath(t))
	if err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("moto_server output (last lines):\n%s", s.logs.tail(40))
		}
	})
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	stop func()
	err  error
}

// Shared returns one server for the whole test binary, started on first
// use: for packages whose many tests each need only a fresh bucket, not a
// fresh server. Tests sharing it must not expect it empty (use fresh names,
// or Reset). TestMain calls StopShared after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := lookPath(t)
	shared.once.Do(func() { shared.s, shared.stop, shared.err = startRetrying(bin) })
	if shared.err != nil {
		t.Fatalf("starting moto_server: %v", shared.err)
	}
	return shared.s
}

// StopShared stops the server Shared started, if it did.
func StopShared() {
	if shared.stop != nil {
		shared.stop()
	}
}

// lookPath finds moto_server, or skips the test saying how to install it —
// fails it under CI (testkit.Missing's rule): CI must never silently skip
// AWS tests.
func lookPath(t testing.TB) string {
	t.Helper()
	return testkit.Tool(t, "moto_server", "install it with `make deps` or pip install 'moto[server]'")
}

// startRetrying starts the server, three times at most (a free port can be
// taken between choosing it and the server binding it).
func startRetrying(bin string) (s *Server, stop func(), err error) {
	for attempt := 0; attempt < 3; attempt++ {
		if s, stop, err = start(bin); err == nil {
			return s, stop, nil
		}
	}
	return nil, nil, err
}

func start(bin string) (*Server, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("running %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, logs: logs}
	stop := func() {
		// moto_server forks a reloader-less werkzeug; kill the whole group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			return nil, nil, fmt.Errorf("moto_server on port %d exited before answering: %v\n%s", port, err, logs.String())
		case <-ctx.Done():
			stop()
			return nil, nil, fmt.Errorf("moto_server on port %d did not answer within %s\n%s", port, startTimeout, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(s.URL + "/moto-api/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return s, stop, nil
		}
	}
}

// Reset drops every resource the server holds (POST /moto-api/reset), so
// tests sharing a server start from nothing.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("resetting moto_server: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resetting moto_server: status %s", resp.Status)
	}
}

// Setenv points the AWS SDK's default configuration chain at the server for
// the rest of the test: AWS_ENDPOINT_URL (every service), static test
// credentials, region Region, and no shared config files. It uses t.Setenv,
// so tests calling it cannot run in parallel.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

// SetenvS3 points only S3 at the server for the rest of the test
// (AWS_ENDPOINT_URL_S3), with static test credentials and region Region,
// for code that talks to S3 alone. It returns the server's URL.
func (s *Server) SetenvS3(t testing.TB) string {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_S3", s.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", Region)
	return s.URL
}

// Env returns the environment variables Setenv sets, for child processes.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            s.URL,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("finding a free port: not a TCP address")
	}
	return addr.Port, nil
}

// syncBuffer collects the server's output from two pipes.
type syncBuffer struct{ testkit.SyncBuffer }

func (b *syncBuffer) tail(n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader([]byte(b.String())))
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	var out bytes.Buffer
	for _, l := range lines {
		out.WriteString(l + "\n")
	}
	return out.String()
}

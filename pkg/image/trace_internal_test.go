//go:build linux && (amd64 || arm64)

package image

import (
	"testing"
)

func TestSandboxUser(t *testing.T) {
	_, idx := mustIndex(t, []tf{
		dir("etc/"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:app:/home/app:/bin/sh\n"),
		file("etc/group", "root:x:0:\nstaff:x:50:\n"),
	})
	for _, tc := range []struct {
		user          string
		uid, gid      int
		home          string
		privilegedArg bool
	}{
		{"", 0, 0, "/root", true},
		{"0", 0, 0, "/root", true},
		{"root", 0, 0, "/root", true},
		{"1000", 1000, 0, "/", true},
		{"1000:50", 1000, 50, "/", true},
		{"app", 1001, 1002, "/home/app", false},
		{"app:staff", 1001, 50, "/home/app", true},
		{"1001", 1001, 1002, "/home/app", true},
		{"ghost", 65534, 65534, "/", true},
		{"app:ghost", 1001, 65534, "/home/app", true},
	} {
		t.Run(tc.user, func(t *testing.T) {
			got := sandboxUser(idx, tc.user, tc.privilegedArg)
			if got.uid != tc.uid || got.gid != tc.gid || got.home != tc.home || got.privileged != tc.privilegedArg {
				t.Errorf("sandboxUser(%q) = %+v, want uid %d gid %d home %s privileged %v", tc.user, got, tc.uid, tc.gid, tc.home, tc.privilegedArg)
			}
		})
	}
}

func TestCleanKeepDotDot(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/usr/bin/cat", "/usr/bin/cat"},
		{"//usr/./bin//cat", "/usr/bin/cat"},
		{"/usr/lib/plugins/../../bin/cat", "/usr/lib/plugins/../../bin/cat"},
		{"/", "/"},
		{"/work/./", "/work"},
	} {
		if got := cleanKeepDotDot(tc.in); got != tc.want {
			t.Errorf("cleanKeepDotDot(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTracerImagePath(t *testing.T) {
	tr := &tracer{root: "/tmp/extract-trace-1/root"}
	for _, tc := range []struct {
		host, want string
		ok         bool
	}{
		{"/tmp/extract-trace-1/root", "/", true},
		{"/tmp/extract-trace-1/root/usr/bin", "/usr/bin", true},
		{"/tmp/extract-trace-1/rootfs/usr", "", false},
		{"/etc/passwd", "", false},
		{"pipe:[1234]", "", false},
	} {
		got, ok := tr.imagePath(tc.host)
		if got != tc.want || ok != tc.ok {
			t.Errorf("imagePath(%q) = %q, %v, want %q, %v", tc.host, got, ok, tc.want, tc.ok)
		}
	}
}

func TestIgnoredPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/tmp": true, "/tmp/x": true, "/dev/null": true, "/proc/self/maps": true, "/sys/kernel": true,
		"/tmpfoo": false, "/usr/lib/libc.so.6": false, "/devices": false,
	} {
		if got := ignoredPath(p); got != want {
			t.Errorf("ignoredPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestWithTraced(t *testing.T) {
	o := &closureOptions{}
	if err := WithTraced([]string{"usr/bin/cat"})(o); err == nil {
		t.Errorf("WithTraced(relative path) = nil error, want one")
	}
	if err := WithTraced([]string{"/usr/bin/cat", "/bin/sh"})(o); err != nil || len(o.traced) != 2 {
		t.Errorf("WithTraced = %v, traced %q", err, o.traced)
	}
}

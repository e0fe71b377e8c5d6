package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandDST(t *testing.T) {
	env := dstEnv{origin: "/app/lib", lib: "lib/x86_64-linux-gnu", platform: "x86_64"}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/usr/lib", "/usr/lib", true},
		{"$ORIGIN/../lib", "/app/lib/../lib", true},
		{"${ORIGIN}/sub", "/app/lib/sub", true},
		{"/opt/$PLATFORM/$LIB", "/opt/x86_64/lib/x86_64-linux-gnu", true},
		{"/opt/${PLATFORM}x/${LIB}", "/opt/x86_64x/lib/x86_64-linux-gnu", true},
		{"$ORIGINAL/x", "$ORIGINAL/x", true}, // not a token: identifier continues
		{"$HOME/lib", "$HOME/lib", true},
		{"/lib$", "/lib$", true},
		{"${ORIGIN", "${ORIGIN", true},
		{"$ORIGIN:$ORIGIN", "/app/lib:/app/lib", true},
	}
	for _, tt := range tests {
		got, ok := expandDST(tt.in, env)
		if got != tt.want || ok != tt.ok {
			t.Errorf("expandDST(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := expandDST("$ORIGIN/x", dstEnv{}); ok {
		t.Error("expandDST($ORIGIN) without an origin succeeded")
	}
}

func TestLibName(t *testing.T) {
	tests := []struct {
		machine   string
		class     int
		multiarch bool
		want      string
	}{
		{"x86_64", 64, true, "lib/x86_64-linux-gnu"},
		{"aarch64", 64, true, "lib/aarch64-linux-gnu"},
		{"x86_64", 64, false, "lib64"},
		{"i386", 32, false, "lib"},
	}
	for _, tt := range tests {
		if got := libName(tt.machine, tt.class, tt.multiarch); got != tt.want {
			t.Errorf("libName(%s, %d, %v) = %q, want %q", tt.machine, tt.class, tt.multiarch, got, tt.want)
		}
	}
	if diff := cmp.Diff([]string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}, defaultDirs("aarch64", 64)); diff != "" {
		t.Errorf("defaultDirs(aarch64) (-want +got):\n%s", diff)
	}
}

func TestNSSServices(t *testing.T) {
	conf := `# comment: ldap
passwd:   files systemd
group:    files [SUCCESS=merge] systemd
hosts:    files mdns4_minimal [NOTFOUND=return] dns myhostname
netgroup: nis # trailing
bad line without colon
`
	want := []string{"files", "systemd", "mdns4_minimal", "dns", "myhostname", "nis"}
	if diff := cmp.Diff(want, nssServices(conf)); diff != "" {
		t.Errorf("nssServices (-want +got):\n%s", diff)
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"/usr/share/**", "/usr/share/zoneinfo/UTC", true},
		{"/usr/share/**", "/usr/share", true},
		{"/usr/**/*.so", "/usr/lib/x/libx.so", true},
		{"/usr/**/*.so", "/usr/libx.so", true},
		{"/usr/*/*.so", "/usr/lib/x/libx.so", false},
		{"/app/[ab].csv", "/app/a.csv", true},
		{"/app/*.csv", "/app/sub/a.csv", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.glob, tt.path); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
	if !excluded("/usr/share", "/usr/share/doc/x") || excluded("/usr/sha", "/usr/share/doc") {
		t.Error("excluded does not match paths below a matched directory only")
	}
}

func TestEnvProgram(t *testing.T) {
	tests := map[string]string{
		"python3":               "python3",
		"-S python3 -u":         "python3",
		"-Spython3 -u":          "python3",
		"-i FOO=1 node":         "node",
		"-u HOME -C /tmp bash":  "bash",
		"--split-string=x bash": "bash",
		"":                      "",
		"-i":                    "",
	}
	for in, want := range tests {
		if got := envProgram(in); got != want {
			t.Errorf("envProgram(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzExpandDST(f *testing.F) {
	for _, s := range []string{"$ORIGIN/../lib", "${LIB}", "$", "${", "$PLATFORM$LIB$ORIGIN", "a$b"} {
		f.Add(s)
	}
	env := dstEnv{origin: "/o", lib: "lib64", platform: "x86_64"}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := expandDST(s, env)
		if !ok {
			t.Fatalf("expandDST(%q) failed with an origin set", s)
		}
		if !strings.Contains(s, "$") && got != s {
			t.Fatalf("expandDST(%q) = %q, changed a string without tokens", s, got)
		}
	})
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("/usr/**/*.so", "/usr/lib/libx.so")
	f.Add("/**/**/a", "/a")
	f.Fuzz(func(t *testing.T, g, p string) {
		if len(g) > 64 || strings.Count(g, "**") > 4 {
			return // bound the backtracking the fuzzer explores
		}
		matchGlob(g, p)
		if !strings.ContainsAny(p, "*?[\\") && !matchGlob(p, p) {
			t.Fatalf("matchGlob(%q, %q) is false", p, p)
		}
	})
}

func TestShellCommands(t *testing.T) {
	tests := []struct {
		script string
		want   []string
	}{
		{"momentum", []string{"momentum"}},
		{"exec /usr/local/bin/momentum --fast", []string{"/usr/local/bin/momentum"}},
		{"LANG=C sort -t, -k1 < in.csv | wc -l > out; echo done", []string{"sort", "wc"}},
		{`grep "a|b;c" file && tail -n +2 || true`, []string{"grep", "tail"}},
		{"if test -f x; then cat x; fi", []string{"cat"}},
		{"env -i PATH=/bin python3 -u app.py", []string{"env", "python3"}},
		{"x=$(date +%s) 2>/dev/null; $CMD; ./run.sh", []string{"date", "./run.sh"}},
		{"command -p awk '{print}' f; exec -a name gzip -d", []string{"awk", "gzip"}},
		{"sort a; sort b", []string{"sort"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, shellCommands(tt.script)); diff != "" {
			t.Errorf("shellCommands(%q) (-want +got):\n%s", tt.script, diff)
		}
	}
}

func TestShellScript(t *testing.T) {
	tests := []struct {
		args   []string
		want   string
		wantOK bool
	}{
		{[]string{"/bin/sh", "-c", "momentum"}, "momentum", true},
		{[]string{"bash", "-ec", "a; b", "arg0"}, "a; b", true},
		{[]string{"/bin/sh", "-e", "-c", "x"}, "x", true},
		{[]string{"/bin/sh", "script.sh"}, "", false},
		{[]string{"/usr/bin/momentum", "-c", "x"}, "", false},
		{[]string{"/bin/sh", "-c"}, "", false},
	}
	for _, tt := range tests {
		got, ok := shellScript(tt.args)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("shellScript(%q) = %q, %v; want %q, %v", tt.args, got, ok, tt.want, tt.wantOK)
		}
	}
}

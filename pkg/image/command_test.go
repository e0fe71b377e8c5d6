package image_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/comingout/extract/pkg/image"
)

// commandTree is an image with programs in PATH directories, a directory,
// a non-executable file and a symlinked program.
func commandTree() map[string]node {
	return withTree(map[string]node{
		"/usr/local/bin/momentum": mainProg(elfSpec{}),
		"/usr/bin/momentum":       mainProg(elfSpec{}),
		"/usr/bin/moment":         text("not executable"),
		"/usr/bin/tool":           text("not executable"),
		"/bin/tool":               mainProg(elfSpec{}),
		"/usr/bin/momentum2":      link("momentum"),
		"/work/run.sh":            script("#!/bin/tool\n"),
		"/work/data/readme":       text("x"),
	})
}

func TestResolveCommand(t *testing.T) {
	pathEnv := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	tests := []struct {
		name string
		cfg  v1.Config
		o    image.Override
		want image.Command
	}{
		{
			name: "entrypoint and cmd, exec form",
			cfg:  v1.Config{Entrypoint: []string{"/usr/bin/momentum", "-v"}, Cmd: []string{"in.csv"}, Env: pathEnv, WorkingDir: "/work", User: "1000:1000"},
			want: image.Command{Entrypoint: []string{"/usr/bin/momentum", "-v"}, Cmd: []string{"in.csv"}, Args: []string{"/usr/bin/momentum", "-v", "in.csv"},
				Path: "/usr/bin/momentum", Env: pathEnv, WorkingDir: "/work", User: "1000:1000"},
		},
		{
			name: "bare name through the image PATH, first match wins",
			cfg:  v1.Config{Entrypoint: []string{"momentum"}, Env: pathEnv},
			want: image.Command{Entrypoint: []string{"momentum"}, Args: []string{"momentum"}, Path: "/usr/local/bin/momentum", Env: pathEnv},
		},
		{
			name: "non-executable files in PATH are passed over",
			cfg:  v1.Config{Cmd: []string{"tool"}, Env: pathEnv},
			want: image.Command{Cmd: []string{"tool"}, Args: []string{"tool"}, Path: "/bin/tool", Env: pathEnv},
		},
		{
			name: "default PATH without ENV",
			cfg:  v1.Config{Cmd: []string{"momentum"}},
			want: image.Command{Cmd: []string{"momentum"}, Args: []string{"momentum"}, Path: "/usr/local/bin/momentum"},
		},
		{
			name: "relative path from WORKDIR",
			cfg:  v1.Config{Cmd: []string{"./run.sh", "x"}, WorkingDir: "/work"},
			want: image.Command{Cmd: []string{"./run.sh", "x"}, Args: []string{"./run.sh", "x"}, Path: "/work/run.sh", WorkingDir: "/work"},
		},
		{
			name: "shell form as Docker stores it",
			cfg:  v1.Config{Cmd: []string{"/bin/tool", "-c", "momentum < in.csv"}},
			want: image.Command{Cmd: []string{"/bin/tool", "-c", "momentum < in.csv"}, Args: []string{"/bin/tool", "-c", "momentum < in.csv"}, Path: "/bin/tool"},
		},
		{
			name: "symlinked program keeps the path named",
			cfg:  v1.Config{Entrypoint: []string{"/usr/bin/momentum2"}},
			want: image.Command{Entrypoint: []string{"/usr/bin/momentum2"}, Args: []string{"/usr/bin/momentum2"}, Path: "/usr/bin/momentum2"},
		},
		{
			name: "entrypoint override clears CMD",
			cfg:  v1.Config{Entrypoint: []string{"/usr/bin/momentum"}, Cmd: []string{"a"}},
			o:    image.Override{Entrypoint: []string{"/bin/tool"}, EntrypointSet: true},
			want: image.Command{Entrypoint: []string{"/bin/tool"}, Args: []string{"/bin/tool"}, Path: "/bin/tool"},
		},
		{
			name: "entrypoint and cmd overrides",
			cfg:  v1.Config{Entrypoint: []string{"/usr/bin/momentum"}, Cmd: []string{"a"}},
			o:    image.Override{Entrypoint: []string{"/bin/tool"}, EntrypointSet: true, Cmd: []string{"b"}, CmdSet: true},
			want: image.Command{Entrypoint: []string{"/bin/tool"}, Cmd: []string{"b"}, Args: []string{"/bin/tool", "b"}, Path: "/bin/tool"},
		},
		{
			name: "cmd override keeps ENTRYPOINT",
			cfg:  v1.Config{Entrypoint: []string{"/usr/bin/momentum"}, Cmd: []string{"a"}},
			o:    image.Override{Cmd: []string{"b", "c"}, CmdSet: true},
			want: image.Command{Entrypoint: []string{"/usr/bin/momentum"}, Cmd: []string{"b", "c"}, Args: []string{"/usr/bin/momentum", "b", "c"}, Path: "/usr/bin/momentum"},
		},
	}
	tree := commandTree()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, idx := treeImage(t, tree, tt.cfg, "linux/amd64")
			got, err := image.ResolveCommand(im, idx, tt.o)
			if err != nil {
				t.Fatalf("ResolveCommand: %v", err)
			}
			tt.want.Platform = "linux/amd64"
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("ResolveCommand (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveCommandErrors(t *testing.T) {
	tests := []struct {
		name        string
		cfg         v1.Config
		wantProblem string
		wantInMsg   []string
	}{
		{
			name:        "missing absolute path, similar names listed",
			cfg:         v1.Config{Entrypoint: []string{"/usr/bin/momentun"}},
			wantProblem: "not found",
			wantInMsg:   []string{`"/usr/bin/momentun"`, "not found", `config says ["/usr/bin/momentun"]`, "looked at /usr/bin/momentun", "/usr/bin/moment", "/usr/bin/momentum", "/usr/bin/momentum2"},
		},
		{
			name:        "bare name missing from every PATH directory",
			cfg:         v1.Config{Cmd: []string{"momentun"}, Env: []string{"PATH=/usr/local/bin:/usr/bin"}},
			wantProblem: "not found",
			wantInMsg:   []string{"looked at /usr/local/bin/momentun, /usr/bin/momentun", "/usr/local/bin/momentum", "/usr/bin/momentum"},
		},
		{
			name:        "directory",
			cfg:         v1.Config{Entrypoint: []string{"/work/data"}},
			wantProblem: "is a directory",
			wantInMsg:   []string{`"/work/data"`, "is a directory"},
		},
		{
			name:        "not executable",
			cfg:         v1.Config{Entrypoint: []string{"/usr/bin/moment"}},
			wantProblem: "not executable",
			wantInMsg:   []string{"not executable", "chmod +x"},
		},
		{
			name:        "only non-executable match in PATH",
			cfg:         v1.Config{Entrypoint: []string{"moment"}, Env: []string{"PATH=/usr/bin"}},
			wantProblem: "not executable",
			wantInMsg:   []string{"looked at /usr/bin/moment"},
		},
		{
			name:        "no entrypoint and no cmd",
			cfg:         v1.Config{Env: []string{"PATH=/usr/bin"}},
			wantProblem: "the image config has no ENTRYPOINT or CMD",
			wantInMsg:   []string{"no ENTRYPOINT or CMD"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, idx := treeImage(t, commandTree(), tt.cfg, "linux/amd64")
			_, err := image.ResolveCommand(im, idx, image.Override{})
			t.Logf("error: %v", err)
			var ee *image.EntrypointError
			if !errors.As(err, &ee) {
				t.Fatalf("ResolveCommand = %v, want an *EntrypointError", err)
			}
			if ee.Problem != tt.wantProblem {
				t.Errorf("Problem = %q, want %q", ee.Problem, tt.wantProblem)
			}
			for _, want := range tt.wantInMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestClosureEntrypointErrors: problems found while following scripts.
func TestClosureEntrypointErrors(t *testing.T) {
	tests := []struct {
		name      string
		tree      map[string]node
		wantInMsg []string
	}{
		{
			name:      "missing #! interpreter",
			tree:      map[string]node{"/app/run": script("#!/usr/bin/python3 -u\n")},
			wantInMsg: []string{`"/usr/bin/python3"`, "not found", `config says ["/app/run"]`},
		},
		{
			name:      "env program missing from PATH",
			tree:      map[string]node{"/app/run": script("#!/usr/bin/env python3\n"), "/usr/bin/env": mainProg(elfSpec{}), "/usr/bin/python3.11": mainProg(elfSpec{})},
			wantInMsg: []string{"#!/usr/bin/env python3", `"python3"`, "not found", "/usr/bin/python3.11"},
		},
		{
			name:      "neither ELF nor script",
			tree:      map[string]node{"/app/run": {data: []byte("MZ not linux"), mode: 0o755}},
			wantInMsg: []string{"exec format error"},
		},
		{
			name:      "interpreter loop",
			tree:      map[string]node{"/app/run": script("#!/app/run\n")},
			wantInMsg: []string{"more than 4 levels"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, idx := treeImage(t, withTree(tt.tree), v1.Config{Entrypoint: []string{"/app/run"}, Env: []string{"PATH=/usr/bin"}}, "linux/amd64")
			_, err := closureOf(im, idx)
			t.Logf("error: %v", err)
			var ee *image.EntrypointError
			if !errors.As(err, &ee) {
				t.Fatalf("Closure = %v, want an *EntrypointError", err)
			}
			for _, want := range tt.wantInMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

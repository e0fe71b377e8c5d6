package lambda

// The zip's manifest: the program, its arguments and environment pointed
// into the bundle, and the link directory.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
)

// relocateScriptArgs points the absolute script path an interpreter
// entrypoint is given (["python3", "/app/main.py"], ["perl", "/x.pl"]:
// the closure's "script" reasons by the entrypoint) into the bundle, so the
// interpreter does not open the host's path.
func (p *packer) relocateScriptArgs(args []string, root string) []string {
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if !path.IsAbs(a) {
			continue
		}
		for _, f := range p.closure.Files {
			if f.Path != path.Clean(a) && !p.viaLinks(f, a) {
				continue
			}
			for _, r := range f.Why {
				if r.Kind == "script" && r.By == p.cmd.Path && strings.HasSuffix(r.Detail, " "+a) {
					out[i] = root + path.Clean(a)
				}
			}
		}
	}
	return out
}

// relocateEnv points the image ENV values that name bundled files by
// absolute path (PLUGIN=/usr/lib/plugins/x.so, CONF_DIRS=/etc/a:/etc/b)
// into the bundle under root, so the program opens the bundled copy and
// not a path on the Lambda host. A value is rewritten only when it is an
// absolute path, or a ':'-list of them, every element of which is a closure
// file or a directory holding closure files (after symlinks in the image);
// anything else is kept as written. PATH and LD_LIBRARY_PATH are mapped by
// the bootstrap, which knows the task root.
func (p *packer) relocateEnv(env []string, root string) []string {
	inClosure := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range p.closure.Files {
		inClosure[f.Path] = true
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	bundled := func(ip string) bool {
		real, _, err := p.idx.Resolve(ip)
		return err == nil && (inClosure[real] || dirs[real])
	}
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = kv
		name, val, ok := strings.Cut(kv, "=")
		if !ok || val == "" || name == "PATH" || name == "LD_LIBRARY_PATH" {
			continue
		}
		elems := strings.Split(val, ":")
		mapped := make([]string, len(elems))
		all := true
		for j, e := range elems {
			if !path.IsAbs(e) || !bundled(e) {
				all = false
				break
			}
			mapped[j] = root + path.Clean(e)
		}
		if all {
			out[i] = name + "=" + strings.Join(mapped, ":")
		}
	}
	return out
}

// viaLinks reports whether the closure file f was reached from the image
// path a through symlinks.
func (p *packer) viaLinks(f image.File, a string) bool {
	real, _, err := p.idx.Resolve(a)
	return err == nil && real == f.Path
}

// closureEnv maps the closure's path variables (TZ, TZDIR, LOCPATH,
// SSL_CERT_FILE, PERL5LIB: see image.ClosureResult.Env) to where the files
// are in the bundle, under LinkDir, which the bootstrap links to the task
// root wherever that is. Without a LinkDir (a static program and no
// script) they cannot be mapped and are left out with a warning.
func (p *packer) closureEnv(linkDir string) []string {
	var out []string
	if linkDir == "" {
		return nil // plan warns
	}
	for _, e := range p.closure.Env {
		vals := make([]string, len(e.Paths))
		for i, ip := range e.Paths {
			vals[i] = linkDir + "/" + xruntime.RootDir + path.Clean(ip)
		}
		out = append(out, e.Name+"="+e.Prefix+strings.Join(vals, ":"))
	}
	return out
}

// zipManifest is the zip's manifest for the program prog: LinkDir when
// any bundled file has a loader or "#!" line to point into the bundle,
// and the image's ENV values, the closure's variables and a shell-form
// command's or interpreter's script paths pointed there.
func (p *packer) zipManifest(prog string) xruntime.Manifest {
	if p.bundled == nil {
		p.shell = map[string]bool{}
		for _, s := range p.closure.ShellScripts {
			p.shell[s] = true
		}
		p.bundled = make(map[string]bool, len(p.closure.Files))
		for _, f := range p.closure.Files {
			p.bundled[f.Path] = true
		}
	}
	var rewritten bool
	for _, f := range p.closure.Files {
		if f.Kind == image.Regular && ((f.ELF != nil && f.ELF.InterpSize > 0) || f.Script != nil) {
			rewritten = true
		}
	}
	m := p.baseManifest(prog)
	m.LibraryPath = append([]string(nil), p.closure.LibraryPath...)
	if rewritten {
		m.LinkDir = linkDir(p.img.Digest, p.closure.Files, m)
	}
	if m.LinkDir != "" {
		m.Env = p.relocateEnv(m.Env, m.LinkDir+"/"+xruntime.RootDir)
	}
	m.Env = append(m.Env, p.closureEnv(m.LinkDir)...)
	if m.LinkDir != "" {
		// A shell-form command's absolute paths point into the bundle,
		// as in bundled scripts.
		m.Args = image.RelocateShellArgs(m.Args, m.LinkDir+"/"+xruntime.RootDir, func(ip string) bool { return p.bundled[ip] })
		m.Args = p.relocateScriptArgs(m.Args, m.LinkDir+"/"+xruntime.RootDir)
	}
	return m
}

// commandRefs records in s the image paths the zip manifest m's command
// line and environment still name after the zip's relocations: the
// program would look for them at their original paths (argv[0] is
// the program itself, which the bootstrap starts from the bundle).
func commandRefs(s *image.PathScanner, m xruntime.Manifest) {
	var args []string
	if len(m.Args) > 1 {
		args = m.Args[1:]
	}
	s.Command(args, m.Env, nil)
}

// baseManifest is the manifest of every format before the format's own
// settings: the program, its arguments and environment as the image gives
// them, and the event settings.
func (p *packer) baseManifest(prog string) xruntime.Manifest {
	m := xruntime.Manifest{
		Version:         xruntime.ManifestVersion,
		Tool:            p.o.tool,
		Image:           p.img.Ref,
		Digest:          p.img.Digest,
		Platform:        p.img.Platform.String(),
		Program:         prog,
		Args:            append([]string(nil), p.cmd.Args...),
		Env:             append([]string(nil), p.cmd.Env...),
		WorkDir:         p.cmd.WorkingDir,
		WritableWorkDir: p.o.writableWorkDir,
		User:            p.cmd.User,
		Input:           p.o.input,
		Output:          p.o.output,

		PassAWSCredentials: p.o.passAWSCredentials,
	}
	return m
}

// warnInput warns about an input file the program is not told about, or
// whose path reaches shell code.
func (p *packer) warnInput(m xruntime.Manifest) {
	if m.Input.Mode == xruntime.InputFile && !containsPlaceholder(m.Args) {
		p.warn("input mode %q but no %q in the arguments %q: the program is not told where the input is", m.Input.Mode, xruntime.InputPlaceholder, m.Args)
	}
	p.warnShellInput(m)
}

// linkDir derives the package's link directory from the image digest, the
// closure's paths and the manifest's settings: "/tmp/x" and 10 hex digits.
// Two packages of one image with different settings get different links,
// so both can be run on one machine.
func linkDir(digest string, files []image.File, m xruntime.Manifest) string {
	h := sha256.New()
	io.WriteString(h, digest+"\n")
	paths := make([]string, 0, len(files))
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	sort.Strings(paths)
	for _, p := range paths {
		io.WriteString(h, p+"\n")
	}
	// The settings, not where the image came from or which extract wrote
	// the package: the same image and flags give the same LinkDir.
	m.LinkDir, m.Image, m.Tool = "", "", ""
	writeJSON(h, m)
	return "/tmp/x" + hex.EncodeToString(h.Sum(nil))[:10]
}

func writeJSON(h hash.Hash, v any) {
	b, _ := json.Marshal(v) // a Manifest always encodes
	h.Write(b)
}

func containsPlaceholder(args []string) bool {
	for _, a := range args {
		if strings.Contains(a, xruntime.InputPlaceholder) {
			return true
		}
	}
	return false
}

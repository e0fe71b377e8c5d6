package image

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"sort"
	"strings"
)

// ClosureResult is everything a program needs from its image.
type ClosureResult struct {
	// Files are the closure's paths sorted by path: regular files and the
	// symlinks met on the way to them (directory symlinks like /lib ->
	// usr/lib included), each with every reason it is needed.
	Files []File `json:"files"`
	// LibraryPath lists the image directories (as searched, before
	// symlinks) in which the closure's shared libraries were found:
	// directories named by DT_RPATH/DT_RUNPATH first, then those of the
	// standard search (LD_LIBRARY_PATH, ld.so.conf, defaults), in search
	// order.
	LibraryPath []string `json:"library_path,omitempty"`
	// Interpreters lists the distinct PT_INTERP paths of the closure's
	// programs, as written in them.
	Interpreters []string `json:"interpreters,omitempty"`
	// Arch is the ELF machine of the program ("x86_64", "aarch64"), or of
	// the interpreter that runs it when the entrypoint is a script.
	Arch string `json:"arch"`
	// GconvPath is the image directory of the gconv modules when
	// WithGconv(true) added them: glibc looks there by a path compiled into
	// libc, so a relocated bundle must set GCONV_PATH to its copy.
	GconvPath string `json:"gconv_path,omitempty"`
	// Env lists environment variables the bundled program needs to find
	// closure files that it would look for at fixed image paths (TZ for
	// /etc/localtime, TZDIR, LOCPATH, SSL_CERT_FILE, PERL5LIB). Values are
	// image paths: a packager maps them to where the files are bundled.
	Env []PathEnv `json:"env,omitempty"`
	// Notes explain decisions of the rules beyond ELF: what a rule could
	// not identify, modules left out, what a data rule cannot relocate.
	Notes []string `json:"notes,omitempty"`
	// Rules sums the closure's regular files by the rule that added them
	// (see Budget), largest first.
	Rules []RuleSize `json:"rules,omitempty"`
	// ShellScripts are the closure's files read as shell scripts (run or
	// sourced): a packager relocates the absolute paths they run and
	// source with RelocateShell.
	ShellScripts []string `json:"shell_scripts,omitempty"`
}

// PathEnv is an environment variable whose value names closure files by
// their image paths: Prefix followed by Paths joined with ":".
type PathEnv struct {
	Name   string   `json:"name"`
	Prefix string   `json:"prefix,omitempty"`
	Paths  []string `json:"paths"`
}

// Closure computes the files cmd needs from the image, without running
// anything from it:
//
//   - the entrypoint (cmd.Path) and every symlink on the way to it;
//   - for a "#!" script, its interpreter, recursively (up to the kernel's
//     4 levels); "#!/usr/bin/env NAME" adds env and NAME found through the
//     image's PATH;
//   - for a shell-form command (["/bin/sh", "-c", "LINE"]), the programs
//     LINE starts, found through the image's PATH (best effort: see
//     shellCommands; "#!" script bodies are read only with WithImage,
//     below);
//   - for a dynamic ELF program, its PT_INTERP loader and its DT_NEEDED
//     libraries, recursively, each loaded once (by name and by SONAME),
//     found the way glibc's ld.so searches: the DT_RPATH of the object and
//     of the objects that loaded it (only when the object has no
//     DT_RUNPATH), LD_LIBRARY_PATH from the image ENV, the object's
//     DT_RUNPATH, the directories of the image's /etc/ld.so.conf (standing
//     in for ld.so.cache, which we never build), then the default
//     directories (multiarch, lib64, lib). $ORIGIN, $LIB and $PLATFORM are
//     expanded (see libName for $LIB). Candidates of another ELF class or
//     machine are skipped, as ld.so does. glibc-hwcaps subdirectories are
//     not searched: the bundle cannot know the CPU it will run on;
//   - when the image's libc is part of the closure, the NSS modules
//     libnss_SERVICE.so.2 of every service the image's /etc/nsswitch.conf
//     names, except those built into libc (files and dns since glibc 2.34;
//     the version is read from the libc-2.NN.so file name older glibc
//     versions have) and bracketed actions; a module the image lacks is
//     logged, not an error, as glibc skips unavailable services too. With
//     WithGconv(true), the gconv modules too;
//   - files matched by WithInclude, and those a traced run saw
//     (WithTraced, see Trace), minus those matched by WithExclude.
//
// With WithImage, the rules beyond ELF apply too (rule_shell.go,
// rule_python.go, rule_perl.go, rule_interpreter.go, rule_data.go; see
// rule.go), each reason naming why:
//
//   - a "#!" script run by a shell (sh, dash, bash, busybox): the words in
//     command position of its body that are executables in the image's
//     PATH ("command"), recursively, and the files it sources with "." or
//     "source" ("script"), read in turn (see scanShell);
//   - Python: the interpreter's standard library minus its tests, IDLE
//     and Tk ("library"), lib-dynload's modules with their libraries (a
//     module whose library the image lacks is left out with a note), and
//     the modules plain import statements name, found in the script's
//     directory, PYTHONPATH, the site directories and their .pth files
//     ("module"), recursively;
//   - Perl: the @INC directories compiled into the perl binary, the
//     modules of use, require and -M, with their XS parts ("module"),
//     recursively;
//   - another interpreter: its library tree when one is found by name
//     ("library"), else a note;
//   - the DataRules not turned off by WithoutData ("data").
//
// Bodies are read in rounds through Extract (only the layers holding the
// files of the round). ClosureResult.Env says which variables point a
// relocated program at data and modules, Notes what could not be done,
// Rules what each rule added (and a note when the total is over
// LambdaUnzippedLimit).
//
// Static programs need no loader and no libraries. Every library missing
// from the image is reported at once in a *MissingLibraryError; a missing
// or non-executable entrypoint or interpreter is an *EntrypointError; a
// program built for another machine than cmd.Platform is an *ArchError.
func Closure(ctx context.Context, idx *Index, cmd *Command, opts ...ClosureOption) (*ClosureResult, error) {
	o := &closureOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if idx == nil || cmd == nil {
		return nil, errors.New("closure: index and command are required")
	}
	if cmd.Path == "" {
		return nil, errors.New("closure: command has no resolved path (use ResolveCommand)")
	}
	c := newCloser(ctx, idx, cmd, o)
	if err := c.run(); err != nil {
		return nil, err
	}
	return c.result(), nil
}

// newCloser returns the state of one Closure call, with fresh rules.
func newCloser(ctx context.Context, idx *Index, cmd *Command, o *closureOptions) *closer {
	c := &closer{
		ctx:      ctx,
		idx:      idx,
		cmd:      cmd,
		o:        o,
		log:      o.logger,
		rules:    newRules(),
		files:    map[string]*File{},
		missing:  map[string]*MissingLib{},
		libDirs:  map[string]int{},
		libFound: map[string]string{},
		interps:  map[string]bool{},
		programs: map[string]bool{},
		scanned:  map[string]bool{},
		optional: map[string]bool{},
	}
	if cmd.Platform != "" {
		c.want = platformMachine(cmd.Platform)
	}
	if v, ok := envValue(cmd.Env, "LD_LIBRARY_PATH"); ok {
		c.envLibPath = splitEnvPath(v)
	}
	c.confDirs = ldsoConfDirs(idx)
	return c
}

// run drives the rules: the entrypoint (with the programs of a
// shell-form command line), the interpreter given arguments, the
// includes, then the queued bodies read in rounds, the traced files, and
// the rules' last work; finally the missing libraries and the excludes
// are checked.
func (c *closer) run() error {
	if err := c.program(c.cmd.Path, Reason{Kind: "entrypoint", Detail: strings.Join(c.cmd.Args, " ")}, 0); err != nil {
		return err
	}
	if line, ok := shellScript(c.cmd.Args); ok {
		if _, err := c.first(lineWork{line: line}); err != nil {
			return err
		}
	}
	c.argsRules()
	for _, g := range c.o.include {
		if err := c.include(g); err != nil {
			return err
		}
	}
	if c.scanOn() {
		if err := c.scanRounds(); err != nil {
			return err
		}
	}
	c.addTraced()
	c.each(finishWork{})
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if len(c.missing) > 0 {
		return c.missingError()
	}
	return c.applyExclude()
}

// closer holds the state of one Closure call.
type closer struct {
	ctx  context.Context
	idx  *Index
	cmd  *Command
	o    *closureOptions
	log  *slog.Logger
	want string // ELF machine the platform implies, "" when unknown

	envLibPath []string
	confDirs   []string

	files    map[string]*File
	missing  map[string]*MissingLib
	libDirs  map[string]int    // directory → discovery order
	libFound map[string]string // library's resolved path → directory found in
	interps  map[string]bool
	arch     string
	// gconvPath is the gconv directory added, if any.
	gconvPath string
	// programs holds the ELF programs whose link map is done.
	programs map[string]bool

	// libc is libc.so.6 of the entrypoint's link map, with that map, once
	// found; NSS and gconv modules are loaded into it.
	libc *object
	lm   *linkMap

	// rules are the closure rules (rule.go), in order.
	rules []rule
	// Content rules (rounds.go): bodies queued for the next round, keys
	// already queued; shared objects loaded as optional (linkmap.go);
	// notes for inspect; variables set for ClosureResult.Env.
	pending  []scanJob
	scanned  map[string]bool
	optional map[string]bool
	notes    []string
	env      []PathEnv
}

func (c *closer) result() *ClosureResult {
	res := &ClosureResult{Arch: c.arch, GconvPath: c.gconvPath, Notes: c.notes}
	for _, f := range c.files {
		res.Files = append(res.Files, *f)
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	c.each(reportWork{res: res})
	res.Env = c.keptEnv(res.Env)
	if c.o.img != nil {
		res.Rules = ruleSizes(res.Files)
		if n := budgetNote(res.Rules); n != "" {
			res.Notes = append(res.Notes, n)
		}
	}
	for p := range c.interps {
		res.Interpreters = append(res.Interpreters, p)
	}
	sort.Strings(res.Interpreters)
	res.LibraryPath = c.libraryPath()
	return res
}

// libraryPath returns ClosureResult.LibraryPath: the directories of the
// closure's libraries outside the standard search first, in discovery
// order, then the standard ones in search order.
func (c *closer) libraryPath() []string {
	standard := map[string]int{}
	var std []string
	std = append(std, c.envLibPath...)
	std = append(std, c.confDirs...)
	if c.lm != nil {
		std = append(std, defaultDirs(c.lm.machine, c.lm.class)...)
	}
	for i, d := range std {
		if _, ok := standard[path.Clean(d)]; !ok {
			standard[path.Clean(d)] = i
		}
	}
	kept := map[string]bool{}
	for real, dir := range c.libFound {
		if _, ok := c.files[real]; ok {
			kept[dir] = true
		}
	}
	var out []string
	for d := range kept {
		out = append(out, d)
	}
	rank := func(d string) (int, int) {
		if i, ok := standard[d]; ok {
			return 1, i
		}
		return 0, c.libDirs[d]
	}
	sort.Slice(out, func(i, j int) bool {
		ai, aj := rank(out[i])
		bi, bj := rank(out[j])
		if ai != bi {
			return ai < bi
		}
		return aj < bj
	})
	return out
}

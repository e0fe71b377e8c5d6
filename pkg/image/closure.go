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
// With WithImage, the rules beyond ELF apply too (scripts.go, python.go,
// perl.go, data.go), each reason naming why:
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
	c := &closer{
		ctx:        ctx,
		idx:        idx,
		cmd:        cmd,
		o:          o,
		log:        o.logger,
		files:      map[string]*File{},
		missing:    map[string]*MissingLib{},
		libDirs:    map[string]int{},
		libFound:   map[string]string{},
		interps:    map[string]bool{},
		programs:   map[string]bool{},
		scanned:    map[string]bool{},
		optional:   map[string]bool{},
		shellFiles: map[string]bool{},

		genericDone: map[string]bool{},
	}
	if cmd.Platform != "" {
		c.want = platformMachine(cmd.Platform)
	}
	if v, ok := envValue(cmd.Env, "LD_LIBRARY_PATH"); ok {
		c.envLibPath = splitEnvPath(v)
	}
	c.confDirs = ldsoConfDirs(idx)

	if err := c.program(cmd.Path, Reason{Kind: "entrypoint", Detail: strings.Join(cmd.Args, " ")}, 0); err != nil {
		return nil, err
	}
	if script, ok := shellScript(cmd.Args); ok {
		if err := c.shellPrograms(script); err != nil {
			return nil, err
		}
	}
	c.argsRules()
	for _, g := range o.include {
		if err := c.include(g); err != nil {
			return nil, err
		}
	}
	if c.scanOn() {
		if err := c.scanRounds(); err != nil {
			return nil, err
		}
	}
	c.addTraced()
	if c.libc != nil {
		c.nss()
		if o.gconv {
			c.gconvModules()
		}
	}
	if o.img != nil {
		c.dataRules()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(c.missing) > 0 {
		return nil, c.missingError()
	}
	if err := c.applyExclude(); err != nil {
		return nil, err
	}
	return c.result(), nil
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

	// Content rules (scripts.go, python.go, perl.go): bodies queued for
	// the next round, keys already queued, shared objects loaded as
	// optional, notes for inspect, per-interpreter state.
	pending     []scanJob
	scanned     map[string]bool
	optional    map[string]bool
	notes       []string
	env         []PathEnv
	genericDone map[string]bool
	shellFiles  map[string]bool
	pythons     []*pyInterp
	perls       []*plInterp
}

// platformMachine maps an OCI platform ("linux/arm64") to the ELF machine
// name ParseELF uses.
func platformMachine(platform string) string {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return ""
	}
	switch parts[1] {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	case "arm":
		return "arm"
	}
	return ""
}

// maxScriptDepth is the kernel's limit on nested "#!" interpreters.
const maxScriptDepth = 4

// program adds an executable (the entrypoint, an interpreter) and what it
// needs to run; depth counts the "#!" interpreters above it.
func (c *closer) program(p string, r Reason, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	err := c.program1(p, r, depth)
	var ee *EntrypointError
	if r.Kind == "interpreter" && errors.As(err, &ee) && ee.Script == "" && ee.Name == p {
		ee.Script = r.By
	}
	return err
}

// program1 is program without the error decoration.
func (c *closer) program1(p string, r Reason, depth int) error {
	e, links, err := c.follow(p)
	if err != nil {
		problem := "not found"
		if errors.Is(err, ErrSymlinkLoop) {
			problem = "symlink loop"
		}
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: problem, Looked: []string{p},
			Nearby: nearby(c.idx, []string{path.Dir(p)}, path.Base(p))}
	}
	switch {
	case e.Kind == Dir:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "is a directory", Looked: []string{p}}
	case e.Kind != Regular:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "not a regular file", Looked: []string{p}}
	case e.Mode&0o111 == 0:
		return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "not executable", Looked: []string{p}}
	}
	c.addPath(p, e, links, r)

	switch {
	case e.Script != nil:
		if depth >= maxScriptDepth {
			return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "more than 4 levels of #! interpreters", Looked: []string{p}}
		}
		s := e.Script
		line := "#!" + s.Interpreter
		if s.Arg != "" {
			line += " " + s.Arg
		}
		ip := s.Interpreter
		if !path.IsAbs(ip) {
			ip = path.Join(workdir(c.cmd), ip)
		}
		if err := c.program(ip, Reason{Kind: "interpreter", By: e.Path, Detail: line}, depth+1); err != nil {
			return err
		}
		if path.Base(s.Interpreter) == "env" {
			if name := envProgram(s.Arg); name != "" {
				found, err := lookPath(c.idx, name, c.cmd.Env, c.cmd.WorkingDir)
				if err != nil {
					var ee *EntrypointError
					if errors.As(err, &ee) {
						ee.Config = c.cmd.Args
						ee.Script = e.Path + " (" + line + ")"
					}
					return err
				}
				if err := c.program(found, Reason{Kind: "interpreter", By: e.Path, Detail: line + " (through PATH)"}, depth+1); err != nil {
					return err
				}
				_, rest, _ := strings.Cut(strings.TrimSpace(s.Arg), name)
				c.scriptRules(e, found, strings.TrimSpace(rest))
				return nil
			}
		}
		c.scriptRules(e, ip, s.Arg)
		return nil
	case e.ELF != nil:
		if err := c.checkArch(e); err != nil {
			return err
		}
		if c.arch == "" {
			c.arch = e.ELF.Machine
		}
		if c.programs[e.Path] {
			return nil
		}
		c.programs[e.Path] = true
		lm := c.loadProgram(e)
		if c.lm == nil || (c.libc == nil && lm.libc != nil) {
			c.lm = lm
			c.libc = lm.libc
		}
		return nil
	}
	return &EntrypointError{Config: c.cmd.Args, Name: p, Problem: "neither an ELF program nor a #! script (exec format error)", Looked: []string{e.Path}}
}

// shellPrograms adds the programs a shell-form command line starts
// (["/bin/sh", "-c", "momentum --fast"] runs momentum), found through the
// image's PATH, with reason "entrypoint" by the shell. The line is read,
// never run, so this is best effort: names the image lacks (functions,
// builtins of other shells) and programs that cannot be followed are
// logged, not errors.
func (c *closer) shellPrograms(script string) error {
	shell := c.cmd.Path
	if e, _, err := c.follow(shell); err == nil {
		shell = e.Path
	}
	for _, name := range shellCommands(script) {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p, err := lookPath(c.idx, name, c.cmd.Env, c.cmd.WorkingDir)
		if err != nil {
			c.log.Warn("program of the shell command line not found in the image", "name", name, "command", script)
			continue
		}
		r := Reason{Kind: "entrypoint", By: shell, Detail: path.Base(c.cmd.Args[0]) + " -c: " + name}
		if err := c.program(p, r, 1); err != nil {
			c.log.Warn("program of the shell command line is unusable", "path", p, "error", err)
		}
	}
	if c.scanOn() {
		// The content rules read the line like a script body: sourced
		// files, scripts the interpreters it starts run.
		c.shellText(shell, script)
	}
	return nil
}

// envProgram returns the program "/usr/bin/env ARG" runs: the first word
// of ARG that is not an option or a NAME=VALUE assignment. "-S" splits the
// rest into words, as coreutils env does.
func envProgram(arg string) string {
	words := strings.Fields(arg)
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-S" || w == "--split-string":
			continue
		case strings.HasPrefix(w, "-S"):
			words = append([]string{w[2:]}, words[i+1:]...)
			i = -1
		case w == "-u" || w == "--unset" || w == "-C" || w == "--chdir":
			i++ // option with a value
		case strings.HasPrefix(w, "-"):
			continue
		case strings.Contains(w, "="):
			continue
		default:
			return w
		}
	}
	return ""
}

func workdir(c *Command) string {
	if c.WorkingDir == "" {
		return "/"
	}
	return c.WorkingDir
}

// checkArch compares a program's ELF machine with the platform.
func (c *closer) checkArch(e *Entry) error {
	if c.want != "" && e.ELF.Machine != c.want {
		return &ArchError{Path: e.Path, Machine: e.ELF.Machine, Platform: c.cmd.Platform, Want: c.want}
	}
	return nil
}

func (c *closer) result() *ClosureResult {
	res := &ClosureResult{Arch: c.arch, GconvPath: c.gconvPath, Notes: c.notes}
	for _, f := range c.files {
		res.Files = append(res.Files, *f)
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	res.Env = c.keptEnv()
	for p := range c.shellFiles {
		if _, ok := c.files[p]; ok {
			res.ShellScripts = append(res.ShellScripts, p)
		}
	}
	sort.Strings(res.ShellScripts)
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

	// Library directories: those outside the standard search first, in
	// discovery order, then the standard ones in search order.
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
	for d := range kept {
		res.LibraryPath = append(res.LibraryPath, d)
	}
	rank := func(d string) (int, int) {
		if i, ok := standard[d]; ok {
			return 1, i
		}
		return 0, c.libDirs[d]
	}
	sort.Slice(res.LibraryPath, func(i, j int) bool {
		ai, aj := rank(res.LibraryPath[i])
		bi, bj := rank(res.LibraryPath[j])
		if ai != bi {
			return ai < bi
		}
		return aj < bj
	})
	return res
}

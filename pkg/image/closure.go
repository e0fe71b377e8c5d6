package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ClosureOption configures Closure.
type ClosureOption func(*closureOptions) error

type closureOptions struct {
	include []string
	exclude []string
	gconv   bool
	logger  *slog.Logger
	// traced are the paths of WithTraced (trace.go).
	traced []string
	// img enables the content and data rules (scripts.go, data.go).
	img    *Image
	noScan bool
	noData map[string]bool
}

// WithInclude adds the files matching each glob to the closure (reason
// "include"), for data files and programs the entrypoint starts by name.
// A pattern is an absolute image path whose components are matched with
// path.Match; a "**" component matches any number of directories. A
// matched directory brings everything below it. ELF files included get
// their libraries resolved too. A pattern matching nothing is an error.
func WithInclude(globs ...string) ClosureOption {
	return func(o *closureOptions) error {
		for _, g := range globs {
			if err := checkGlob(g); err != nil {
				return fmt.Errorf("--include %q: %w", g, err)
			}
		}
		o.include = append(o.include, globs...)
		return nil
	}
}

// WithExclude removes the files matching each glob (same syntax as
// WithInclude; a matched directory removes what lies below it) from the
// closure. Excluding the entrypoint, its loader or a script's interpreter
// (or a symlink on the way to them) is an *ExcludeError.
func WithExclude(globs ...string) ClosureOption {
	return func(o *closureOptions) error {
		for _, g := range globs {
			if err := checkGlob(g); err != nil {
				return fmt.Errorf("--exclude %q: %w", g, err)
			}
		}
		o.exclude = append(o.exclude, globs...)
		return nil
	}
}

// WithGconv adds glibc's gconv modules directory (the gconv-modules
// configuration and every module .so with its libraries), which iconv(3)
// loads by name at run time. Default false: the directory is about 8 MB on
// Debian, a sixth of Lambda's 50 MB upload limit, and only programs
// converting between character sets need it.
func WithGconv(on bool) ClosureOption {
	return func(o *closureOptions) error {
		o.gconv = on
		return nil
	}
}

// WithClosureLogger sets the logger Closure reports its decisions to
// (libraries found, candidates skipped) at debug level. Default: discard.
func WithClosureLogger(l *slog.Logger) ClosureOption {
	return func(o *closureOptions) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		o.logger = l
		return nil
	}
}

// WithImage gives Closure the image the index was built from, which turns
// on the rules that go beyond ELF (see Closure): the content rules read
// the bodies of scripts, modules and interpreters through Extract, in
// rounds, each reading only the layers that hold the files it needs (at
// most 1 MiB of each script or module, 16 MiB of an interpreter binary),
// and the data rules add well-known files read at run time. Without it
// (the default), Closure follows ELF and "#!" lines only and reads no file
// body.
func WithImage(img *Image) ClosureOption {
	return func(o *closureOptions) error {
		if img == nil {
			return errors.New("image is nil")
		}
		o.img = img
		return nil
	}
}

// WithScan turns the content rules (shell script bodies, Python and Perl
// imports, interpreters' library trees) on or off. Default on; they only
// run with WithImage.
func WithScan(on bool) ClosureOption {
	return func(o *closureOptions) error {
		o.noScan = !on
		return nil
	}
}

// WithoutData turns off data rules by name (see DataRules; "all" turns off
// every one). Default: every data rule is on when WithImage is given.
func WithoutData(names ...string) ClosureOption {
	return func(o *closureOptions) error {
		if o.noData == nil {
			o.noData = map[string]bool{}
		}
		for _, n := range names {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if n == "all" {
				for _, r := range DataRules {
					o.noData[r.Name] = true
				}
				continue
			}
			if !isDataRule(n) {
				return fmt.Errorf("--no-data %q: want one of %s or all", n, strings.Join(dataRuleNames(), ", "))
			}
			o.noData[n] = true
		}
		return nil
	}
}

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

// add records reason for the image path p (entry e).
func (c *closer) add(e *Entry, r Reason) {
	f, ok := c.files[e.Path]
	if !ok {
		f = &File{Entry: *e}
		c.files[e.Path] = f
	}
	for _, have := range f.Why {
		if have == r {
			return
		}
	}
	f.Why = append(f.Why, r)
}

// follow resolves p inside the image like the kernel's path walk
// (Index.Resolve) and returns the final entry and every symlink met,
// directory symlinks included, in order. The root directory itself is an
// error: no rule adds it.
func (c *closer) follow(p string) (*Entry, []*Entry, error) {
	var links []*Entry
	rp, e, err := c.idx.walk(p, true, func(l *Entry) { links = append(links, l) })
	if err != nil {
		return nil, links, err
	}
	if rp == "/" {
		return nil, links, fmt.Errorf("%q is the root directory", p)
	}
	return e, links, nil
}

// addPath adds the file at p (after symlinks) with reason r, and each
// symlink on the way with reason "symlink".
func (c *closer) addPath(p string, e *Entry, links []*Entry, r Reason) {
	for _, l := range links {
		c.add(l, Reason{Kind: "symlink", By: e.Path, Detail: p})
	}
	c.add(e, r)
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

// object is one ELF file of a link map.
type object struct {
	path   string // image path as found (before symlinks)
	entry  *Entry
	loader *object // the object whose DT_NEEDED (or dlopen) loaded it
	origin string  // $ORIGIN
}

// linkMap is the set of objects one program loads, as ld.so builds it.
type linkMap struct {
	main    *object
	class   int
	machine string
	lib     string // $LIB
	byName  map[string]*object
	byPath  map[string]*object // by resolved path
	queue   []*object
	libc    *object
}

// loadProgram adds the loader and the libraries of a dynamic ELF program
// and returns its link map.
func (c *closer) loadProgram(e *Entry) *linkMap {
	info := e.ELF
	lm := &linkMap{
		class:   info.Class,
		machine: info.Machine,
		byName:  map[string]*object{},
		byPath:  map[string]*object{},
	}
	// For the main program ld.so takes $ORIGIN from /proc/self/exe, which
	// has its symlinks resolved.
	lm.main = &object{path: e.Path, entry: e, origin: path.Dir(e.Path)}
	lm.byPath[e.Path] = lm.main
	multiarch := false
	if info.Interp != "" {
		c.interps[info.Interp] = true
		le, links, err := c.follow(info.Interp)
		if err != nil || le.Kind != Regular {
			c.addMissing(info.Interp, e.Path, []string{path.Dir(info.Interp)})
		} else {
			c.addPath(info.Interp, le, links, Reason{Kind: "loader", By: e.Path, Detail: info.Interp})
			ld := &object{path: info.Interp, entry: le, origin: path.Dir(info.Interp)}
			lm.byPath[le.Path] = ld
			lm.byName[path.Base(info.Interp)] = ld
			if le.ELF != nil && le.ELF.SOName != "" {
				lm.byName[le.ELF.SOName] = ld
			}
			tr := triplet(info.Machine, info.Class)
			multiarch = tr != "" && strings.Contains(le.Path, "/"+tr+"/")
		}
	}
	lm.lib = libName(info.Machine, info.Class, multiarch)
	lm.queue = append(lm.queue, lm.main)
	c.drain(lm)
	return lm
}

// drain loads the DT_NEEDED libraries of every queued object, breadth
// first, as ld.so does.
func (c *closer) drain(lm *linkMap) {
	for len(lm.queue) > 0 {
		if c.ctx.Err() != nil {
			return
		}
		obj := lm.queue[0]
		lm.queue = lm.queue[1:]
		if obj.entry.ELF == nil {
			continue
		}
		for _, name := range obj.entry.ELF.Needed {
			c.need(lm, obj, name, Reason{Kind: "needed", By: obj.entry.Path, Detail: name})
		}
	}
}

// need loads name for obj into lm, unless already loaded; it returns the
// object, or nil when missing.
func (c *closer) need(lm *linkMap, obj *object, name string, r Reason) *object {
	if have, ok := lm.byName[name]; ok {
		c.add(have.entry, r)
		return have
	}
	found, e, links, searched := c.search(lm, obj, name)
	if e == nil {
		c.addMissing(name, obj.entry.Path, searched)
		return nil
	}
	if have, ok := lm.byPath[e.Path]; ok {
		// The same file under another name (glibc compares inodes).
		lm.byName[name] = have
		c.addPath(found, e, links, r)
		return have
	}
	c.addPath(found, e, links, r)
	o := &object{path: found, entry: e, loader: obj, origin: path.Dir(found)}
	lm.byName[name] = o
	if e.ELF.SOName != "" {
		if _, ok := lm.byName[e.ELF.SOName]; !ok {
			lm.byName[e.ELF.SOName] = o
		}
	}
	lm.byPath[e.Path] = o
	lm.queue = append(lm.queue, o)
	c.libDir(found, e)
	if name == "libc.so.6" || e.ELF.SOName == "libc.so.6" {
		lm.libc = o
	}
	c.log.Debug("library", "name", name, "path", found, "needed_by", obj.entry.Path)
	return o
}

// libDir records the directory a library was found in.
func (c *closer) libDir(found string, e *Entry) {
	dir := path.Dir(found)
	if _, ok := c.libDirs[dir]; !ok {
		c.libDirs[dir] = len(c.libDirs)
	}
	if _, ok := c.libFound[e.Path]; !ok {
		c.libFound[e.Path] = dir
	}
}

// search looks for the library name needed by obj the way ld.so's
// _dl_map_object does, returning the path found (as searched), its entry
// and the symlinks on the way, plus every directory searched.
func (c *closer) search(lm *linkMap, obj *object, name string) (string, *Entry, []*Entry, []string) {
	if strings.Contains(name, "/") {
		p, ok := expandDST(name, c.dst(lm, obj))
		if !ok {
			return "", nil, nil, []string{name}
		}
		if !path.IsAbs(p) {
			p = path.Join(workdir(c.cmd), p)
		}
		if e, links, ok := c.candidate(lm, p); ok {
			return p, e, links, nil
		}
		return "", nil, nil, []string{path.Dir(p)}
	}
	var searched []string
	seen := map[string]bool{}
	try := func(dirs []string, env dstEnv) (string, *Entry, []*Entry) {
		for _, d := range dirs {
			dir, ok := expandDST(d, env)
			if !ok || dir == "" {
				continue
			}
			if !path.IsAbs(dir) {
				dir = path.Join(workdir(c.cmd), dir)
			}
			dir = path.Clean(dir)
			if seen[dir] {
				continue
			}
			seen[dir] = true
			searched = append(searched, dir)
			p := path.Join(dir, name)
			if e, links, ok := c.candidate(lm, p); ok {
				return p, e, links
			}
		}
		return "", nil, nil
	}
	// DT_RPATH of the object and of its loaders, unless it has DT_RUNPATH;
	// objects with DT_RUNPATH contribute no DT_RPATH.
	if len(obj.entry.ELF.RunPath) == 0 {
		for l := obj; l != nil; l = l.loader {
			if l.entry.ELF == nil || len(l.entry.ELF.RunPath) > 0 {
				continue
			}
			if p, e, links := try(l.entry.ELF.RPath, c.dst(lm, l)); e != nil {
				return p, e, links, searched
			}
		}
	}
	if p, e, links := try(c.envLibPath, c.dst(lm, lm.main)); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(obj.entry.ELF.RunPath, c.dst(lm, obj)); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(c.confDirs, dstEnv{}); e != nil {
		return p, e, links, searched
	}
	if p, e, links := try(defaultDirs(lm.machine, lm.class), dstEnv{}); e != nil {
		return p, e, links, searched
	}
	return "", nil, nil, searched
}

// candidate reports whether p holds a shared object ld.so would accept
// for lm: an ELF file of the same class and machine.
func (c *closer) candidate(lm *linkMap, p string) (*Entry, []*Entry, bool) {
	e, links, err := c.follow(p)
	if err != nil || e.Kind != Regular {
		return nil, nil, false
	}
	if e.ELF == nil {
		c.log.Debug("skipping non-ELF candidate", "path", p)
		return nil, nil, false
	}
	if e.ELF.Class != lm.class || e.ELF.Machine != lm.machine {
		c.log.Debug("skipping candidate of another class or machine", "path", p,
			"class", e.ELF.Class, "machine", e.ELF.Machine, "want_class", lm.class, "want_machine", lm.machine)
		return nil, nil, false
	}
	return e, links, true
}

// dst returns the token values for obj in lm.
func (c *closer) dst(lm *linkMap, obj *object) dstEnv {
	return dstEnv{origin: obj.origin, lib: lm.lib, platform: platformName(lm.machine)}
}

func (c *closer) addMissing(name, by string, searched []string) {
	m, ok := c.missing[name]
	if !ok {
		m = &MissingLib{Soname: name}
		c.missing[name] = m
	}
	if !contains(m.NeededBy, by) {
		m.NeededBy = append(m.NeededBy, by)
		sort.Strings(m.NeededBy)
	}
	for _, d := range searched {
		if !contains(m.Searched, d) {
			m.Searched = append(m.Searched, d)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *closer) missingError() error {
	err := &MissingLibraryError{}
	for _, m := range c.missing {
		err.Missing = append(err.Missing, *m)
	}
	sort.Slice(err.Missing, func(i, j int) bool { return err.Missing[i].Soname < err.Missing[j].Soname })
	return err
}

// nssBuiltin are the NSS services built into libc.so.6 since glibc 2.34.
var nssBuiltin = map[string]bool{"files": true, "dns": true}

var libcVersioned = regexp.MustCompile(`^libc-2\.(\d+)\.so$`)

// nss adds the NSS modules the image's /etc/nsswitch.conf names.
func (c *closer) nss() {
	conf, ok := c.idx.Content("/etc/nsswitch.conf")
	if !ok {
		return
	}
	builtin := true
	if m := libcVersioned.FindStringSubmatch(path.Base(c.libc.entry.Path)); m != nil {
		if minor, err := strconv.Atoi(m[1]); err == nil && minor < 34 {
			builtin = false
		}
	}
	for _, svc := range nssServices(string(conf)) {
		if builtin && nssBuiltin[svc] {
			continue
		}
		name := "libnss_" + svc + ".so.2"
		if _, ok := c.lm.byName[name]; ok {
			continue
		}
		found, e, links, searched := c.search(c.lm, c.libc, name)
		if e == nil {
			c.log.Debug("NSS module not in the image; glibc will skip the service", "module", name, "searched", strings.Join(searched, ":"))
			continue
		}
		c.addPath(found, e, links, Reason{Kind: "runtime", By: c.libc.entry.Path, Detail: "nsswitch.conf service " + svc})
		if _, ok := c.lm.byPath[e.Path]; ok {
			continue
		}
		o := &object{path: found, entry: e, loader: c.libc, origin: path.Dir(found)}
		c.lm.byName[name] = o
		c.lm.byPath[e.Path] = o
		c.lm.queue = append(c.lm.queue, o)
		c.libDir(found, e)
	}
	c.drain(c.lm)
}

// nssServices returns the distinct service names of an nsswitch.conf, in
// order of appearance, without the [STATUS=ACTION] items.
func nssServices(conf string) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		_, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		inAction := false
		for _, w := range strings.Fields(rest) {
			if strings.HasPrefix(w, "[") {
				inAction = true
			}
			if inAction {
				if strings.HasSuffix(w, "]") {
					inAction = false
				}
				continue
			}
			if !seen[w] && isServiceName(w) {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

func isServiceName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIdent(s[i]) && s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// gconvModules adds glibc's gconv directory: the gconv-modules
// configuration files and every module, with their libraries.
func (c *closer) gconvModules() {
	tr := triplet(c.lm.machine, c.lm.class)
	dirs := []string{"/usr/lib64/gconv", "/usr/lib/gconv"}
	if tr != "" {
		dirs = append([]string{"/usr/lib/" + tr + "/gconv"}, dirs...)
	}
	for _, dir := range dirs {
		de, links, err := c.follow(dir)
		if err != nil || de.Kind != Dir {
			continue
		}
		r := Reason{Kind: "runtime", By: c.libc.entry.Path, Detail: "gconv"}
		for _, l := range links {
			c.add(l, Reason{Kind: "symlink", By: de.Path, Detail: dir})
		}
		c.addTree(dir, r, func(e *Entry) {
			if e.Kind == Regular && e.ELF != nil && e.ELF.Class == c.lm.class && e.ELF.Machine == c.lm.machine {
				if _, ok := c.lm.byPath[e.Path]; !ok {
					o := &object{path: e.Path, entry: e, loader: c.libc, origin: path.Dir(e.Path)}
					c.lm.byPath[e.Path] = o
					c.lm.queue = append(c.lm.queue, o)
				}
			}
		})
		c.drain(c.lm)
		c.gconvPath = de.Path
		return
	}
}

// addTree adds every regular file and symlink below dir (through the
// index) with reason r, calling fn for each.
func (c *closer) addTree(dir string, r Reason, fn func(*Entry)) {
	for _, e := range c.idx.ReadDir(dir) {
		switch e.Kind {
		case Dir:
			c.addTree(e.Path, r, fn)
		case Regular, Symlink:
			c.add(e, r)
			fn(e)
		}
	}
}

// include adds the files matching one --include glob.
func (c *closer) include(g string) error {
	matches := c.glob(g)
	if len(matches) == 0 {
		return fmt.Errorf("--include %q matches no file in the image", g)
	}
	r := Reason{Kind: "include", Detail: g}
	for _, m := range matches {
		e, links, err := c.follow(m)
		if err != nil {
			// A dangling symlink: keep the link itself.
			if le, ok := c.idx.Lookup(m); ok && le.Kind == Symlink {
				c.add(le, r)
			}
			continue
		}
		for _, l := range links {
			c.add(l, Reason{Kind: "symlink", By: e.Path, Detail: m})
		}
		if e.Kind == Dir {
			c.addTree(e.Path, r, func(e *Entry) { c.includeELF(e) })
			continue
		}
		c.add(e, r)
		c.includeELF(e)
	}
	return nil
}

// includeELF resolves the libraries of an included ELF file in a link map
// of its own, and the interpreter of an included executable script. An
// interpreter the image lacks is logged: the include asked for the file,
// not necessarily for running it.
func (c *closer) includeELF(e *Entry) {
	if e.Kind == Regular && e.Script != nil && e.Mode&0o111 != 0 {
		s := e.Script
		ip := s.Interpreter
		if !path.IsAbs(ip) {
			ip = path.Join(workdir(c.cmd), ip)
		}
		line := "#!" + strings.TrimSpace(s.Interpreter+" "+s.Arg)
		if err := c.program(ip, Reason{Kind: "interpreter", By: e.Path, Detail: line}, 1); err != nil {
			c.log.Warn("interpreter of an included script is unusable", "path", e.Path, "error", err)
			return
		}
		c.scriptRules(e, ip, s.Arg)
		return
	}
	if e.Kind != Regular || e.ELF == nil || e.ELF.Static() {
		return
	}
	if c.want != "" && e.ELF.Machine != c.want {
		c.log.Warn("included file is built for another machine; its libraries are not resolved", "path", e.Path, "machine", e.ELF.Machine)
		return
	}
	c.loadProgram(e)
}

// glob returns the image paths matching g. Components are matched with
// path.Match; "**" matches zero or more directories.
func (c *closer) glob(g string) []string {
	if !strings.Contains(g, "**") {
		return c.idx.Glob(g)
	}
	var out []string
	_ = c.idx.Walk(func(e *Entry) error {
		if matchGlob(g, e.Path) {
			out = append(out, e.Path)
		}
		return nil
	})
	return out
}

// checkGlob validates a pattern for WithInclude and WithExclude.
func checkGlob(g string) error {
	if !path.IsAbs(g) {
		return errors.New("must be an absolute image path")
	}
	if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil {
		return err
	}
	return nil
}

// matchGlob matches the clean absolute path p against pattern g, component
// by component, "**" matching any number of components.
func matchGlob(g, p string) bool {
	return matchParts(splitClean(g), splitClean(p))
}

func splitClean(p string) []string {
	var out []string
	for _, s := range strings.Split(path.Clean("/"+p), "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func matchParts(g, p []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(p); i++ {
				if matchParts(g[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], p[0]); !ok {
			return false
		}
		g, p = g[1:], p[1:]
	}
	return len(p) == 0
}

// excluded reports whether p is matched by glob g or lies below a path it
// matches.
func excluded(g, p string) bool {
	parts := splitClean(p)
	for i := len(parts); i > 0; i-- {
		if matchParts(splitClean(g), parts[:i]) {
			return true
		}
	}
	return false
}

// applyExclude drops the files matching WithExclude globs.
func (c *closer) applyExclude() error {
	if len(c.o.exclude) == 0 {
		return nil
	}
	protected := map[string]string{}
	for p, f := range c.files {
		for _, r := range f.Why {
			switch r.Kind {
			case "entrypoint", "loader", "interpreter":
				protected[p] = r.Kind
			}
		}
	}
	for p, f := range c.files {
		for _, r := range f.Why {
			if k, ok := protected[r.By]; ok && r.Kind == "symlink" {
				protected[p] = k
			}
		}
	}
	for _, g := range c.o.exclude {
		for p := range c.files {
			if !excluded(g, p) {
				continue
			}
			if k, ok := protected[p]; ok {
				return &ExcludeError{Pattern: g, Path: p, Kind: k}
			}
			delete(c.files, p)
		}
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

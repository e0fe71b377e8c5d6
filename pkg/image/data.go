package image

import (
	"path"
	"strings"
)

// DataRule is one rule adding well-known data files that glibc and common
// libraries read at run time by a fixed path.
type DataRule struct {
	// Name turns the rule off in WithoutData (CLI: --no-data NAME).
	Name string `json:"name"`
	// Files says what the rule adds, when present and small.
	Files string `json:"files"`
}

// DataRules are the data rules, applied in this order when WithImage is
// given. Each adds files only when the image has them and each file is at
// most 16 MiB (a directory at most 16 MiB in all); a larger one is left
// out with a note.
//
// glibc reads /etc/nsswitch.conf, /etc/passwd and /etc/group at fixed
// paths that no environment variable moves: a relocated bundle (Lambda)
// reads the host's, so those copies serve programs that open them
// relative to their root, and inspect says so. The other rules name their
// files through ClosureResult.Env (TZ, TZDIR, LOCPATH, SSL_CERT_FILE),
// which a packager maps into the bundle.
var DataRules = []DataRule{
	{Name: "nsswitch", Files: "/etc/nsswitch.conf, /etc/host.conf"},
	{Name: "passwd", Files: "/etc/passwd and /etc/group (getpwuid, getgrgid; the image's USER)"},
	{Name: "tz", Files: "/etc/localtime with the zoneinfo file it links to, /etc/timezone; the TZ variable's zoneinfo directory when the image sets TZ"},
	{Name: "locale", Files: "the locale of LC_ALL / LC_CTYPE / LANG: /usr/lib/locale/NAME (a locale only in the locale-archive is noted: glibc reads the archive at a fixed path)"},
	{Name: "certs", Files: "/etc/ssl/certs/ca-certificates.crt (OpenSSL, GnuTLS, Go, Python's ssl)"},
}

// maxDataSize bounds a data rule's files.
const maxDataSize = 16 << 20

// CheckDataRules reports an error for a name that is neither a DataRule's
// nor "all" (what WithoutData accepts).
func CheckDataRules(names ...string) error {
	return WithoutData(names...)(&closureOptions{})
}

func isDataRule(n string) bool {
	for _, r := range DataRules {
		if r.Name == n {
			return true
		}
	}
	return false
}

func dataRuleNames() []string {
	var out []string
	for _, r := range DataRules {
		out = append(out, r.Name)
	}
	return out
}

// dataRules applies the data rules not turned off.
func (c *closer) dataRules() {
	on := func(n string) bool { return !c.o.noData[n] }
	if on("nsswitch") {
		c.dataFile("nsswitch", "/etc/nsswitch.conf", "name service switch configuration")
		c.dataFile("nsswitch", "/etc/host.conf", "resolver configuration")
	}
	if on("passwd") {
		who := "users and groups"
		if c.cmd.User != "" {
			who += " (USER " + c.cmd.User + ")"
		}
		a := c.dataFile("passwd", "/etc/passwd", who)
		b := c.dataFile("passwd", "/etc/group", who)
		if a || b {
			c.note("data passwd: /etc/passwd and /etc/group are bundled, but glibc opens them at fixed paths: a relocated program (on Lambda) reads the host's; turn off with --no-data passwd")
		}
	}
	if on("tz") {
		c.dataTZ()
	}
	if on("locale") {
		c.dataLocale()
	}
	if on("certs") {
		const certs = "/etc/ssl/certs/ca-certificates.crt"
		if c.dataFile("certs", certs, "CA certificates") {
			c.setEnv("SSL_CERT_FILE", "", certs)
		}
	}
}

// dataFile adds the regular file at p (after symlinks) for rule, when it
// exists and is small; it reports whether it was added.
func (c *closer) dataFile(rule, p, what string) bool {
	e, links, err := c.follow(p)
	if err != nil || e.Kind != Regular {
		return false
	}
	if e.Size > maxDataSize {
		c.note("data %s: left out %s (%d bytes, over %d); add it with --include %s", rule, p, e.Size, maxDataSize, p)
		return false
	}
	c.addPath(p, e, links, Reason{Kind: "data", Detail: rule + ": " + what})
	return true
}

// dataDir adds every file below dir for rule when the directory holds at
// most maxDataSize bytes.
func (c *closer) dataDir(rule, dir, what string) bool {
	de, links, err := c.follow(dir)
	if err != nil || de.Kind != Dir {
		return false
	}
	var size int64
	var walk func(string)
	walk = func(d string) {
		for _, e := range c.idx.ReadDir(d) {
			switch e.Kind {
			case Dir:
				walk(e.Path)
			case Regular:
				size += e.Size
			}
		}
	}
	walk(de.Path)
	if size > maxDataSize {
		c.note("data %s: left out %s (%d bytes, over %d); add it with --include '%s/**'", rule, dir, size, maxDataSize, dir)
		return false
	}
	for _, l := range links {
		c.add(l, Reason{Kind: "symlink", By: de.Path, Detail: dir})
	}
	c.addTree(de.Path, Reason{Kind: "data", Detail: rule + ": " + what}, func(*Entry) {})
	return true
}

// dataTZ adds the time zone data: /etc/localtime (a symlink into
// zoneinfo, or a copy) and /etc/timezone; with TZ set in the image, the
// zoneinfo directory TZ names are looked up in. The bundled program finds
// them through TZ=":/etc/localtime" (TZ unset in the image) or TZDIR,
// mapped into the bundle.
func (c *closer) dataTZ() {
	tz, tzSet := envValue(c.cmd.Env, "TZ")
	if c.dataFile("tz", "/etc/localtime", "local time zone") && !tzSet {
		c.setEnv("TZ", ":", "/etc/localtime")
	}
	c.dataFile("tz", "/etc/timezone", "local time zone name")
	if !tzSet || tz == "" {
		return
	}
	spec := strings.TrimPrefix(tz, ":")
	if path.IsAbs(spec) {
		if c.dataFile("tz", spec, "TZ="+tz) {
			c.setEnv("TZ", ":", spec)
		}
		return
	}
	dir := "/usr/share/zoneinfo"
	if d, ok := envValue(c.cmd.Env, "TZDIR"); ok && path.IsAbs(d) {
		dir = path.Clean(d)
	}
	if c.dataDir("tz", dir, "zoneinfo for TZ="+tz) {
		c.setEnv("TZDIR", "", dir)
	} else if c.dataFile("tz", path.Join(dir, spec), "TZ="+tz) {
		c.setEnv("TZDIR", "", dir)
	}
}

// dataLocale adds the locale the image's LC_ALL, LC_CTYPE or LANG names
// (C and POSIX need none): /usr/lib/locale/NAME in glibc's normalized
// spelling (C.UTF-8 is C.utf8) or as written. LOCPATH points the bundled
// program at the copy. A locale only in the locale-archive is noted, not
// bundled: glibc opens the archive at a fixed path and ignores it when
// LOCPATH is set.
func (c *closer) dataLocale() {
	name := ""
	for _, v := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if s, ok := envValue(c.cmd.Env, v); ok && s != "" {
			name = s
			break
		}
	}
	if name == "" || name == "C" || name == "POSIX" {
		return
	}
	const base = "/usr/lib/locale"
	for _, n := range []string{normalizeLocale(name), name} {
		if c.dataDir("locale", path.Join(base, n), "locale "+name) {
			c.setEnv("LOCPATH", "", base)
			return
		}
	}
	if e, _, err := c.follow(path.Join(base, "locale-archive")); err == nil && e.Kind == Regular {
		// glibc reads the archive only at its compiled-in path, and
		// only when LOCPATH is unset: a relocated copy cannot be used.
		c.note("data locale: %q is only in %s/locale-archive, which glibc opens at a fixed path (a relocated program reads the host's); make it a directory in the image (localedef --no-archive) to bundle it", name, base)
		return
	}
	c.note("data locale: no locale %q in the image's %s; the program runs in the C locale, as in the image", name, base)
}

// normalizeLocale spells a locale name as glibc looks it up: the codeset
// lower-cased without '-' and '_' ("en_US.UTF-8" is "en_US.utf8").
func normalizeLocale(name string) string {
	lang, rest, ok := strings.Cut(name, ".")
	if !ok {
		return name
	}
	codeset, mod, hasMod := strings.Cut(rest, "@")
	codeset = strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(codeset))
	out := lang + "." + codeset
	if hasMod {
		out += "@" + mod
	}
	return out
}

// setEnv records a variable for ClosureResult.Env (the first one set for
// a name wins).
func (c *closer) setEnv(name, prefix string, paths ...string) {
	for _, e := range c.env {
		if e.Name == name {
			return
		}
	}
	c.env = append(c.env, PathEnv{Name: name, Prefix: prefix, Paths: paths})
}

// keptEnv returns ClosureResult.Env: the data rules' variables, PERL5LIB
// and PYTHONPATH (the image's own entries and the absolute directories of
// .pth files, which a relocated interpreter would look for on the host),
// without the other variables the image's ENV sets itself and without
// paths WithExclude removed.
func (c *closer) keptEnv() []PathEnv {
	all := append([]PathEnv(nil), c.env...)
	for _, pl := range c.perls {
		var dirs []string
		for _, d := range pl.inc {
			if pl.used[d] {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) > 0 {
			all = append(all, PathEnv{Name: "PERL5LIB", Paths: dirs})
			break
		}
	}
	for _, pi := range c.pythons {
		if len(pi.relocate) > 0 {
			all = append(all, PathEnv{Name: "PYTHONPATH", Paths: pi.relocate})
			break
		}
	}
	var out []PathEnv
	for _, e := range all {
		if _, set := envValue(c.cmd.Env, e.Name); set && e.Name != "PERL5LIB" && e.Name != "PYTHONPATH" {
			continue
		}
		var kept []string
		for _, p := range e.Paths {
			if c.bundled(p) {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out = append(out, PathEnv{Name: e.Name, Prefix: e.Prefix, Paths: kept})
		}
	}
	return out
}

// bundled reports whether the closure holds p or a file below it.
func (c *closer) bundled(p string) bool {
	e, _, err := c.follow(p)
	if err != nil {
		return false
	}
	if _, ok := c.files[e.Path]; ok {
		return true
	}
	if e.Kind != Dir {
		return false
	}
	prefix := e.Path + "/"
	for fp := range c.files {
		if strings.HasPrefix(fp, prefix) {
			return true
		}
	}
	return false
}

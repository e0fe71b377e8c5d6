package image

import (
	"path"
	"strings"
)

// DataRule is one rule adding well-known data files that glibc and common
// libraries read at run time by a fixed path.
type DataRule struct {
	// Name turns the rule off in WithoutData.
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

func init() { registerRule(60, func() rule { return dataRule{} }) }

// dataRule is the rule of the DataRules: well-known files read at run
// time by a fixed path, added once the other rules are done, when
// WithImage is given.
type dataRule struct{}

func (dataRule) name() string           { return "data" }
func (dataRule) interprets(string) bool { return false }

func (r dataRule) apply(c *closer, w work) (bool, error) {
	if _, ok := w.(finishWork); !ok {
		return false, nil
	}
	if c.o.img != nil {
		r.dataRules(c)
	}
	return true, nil
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
func (r dataRule) dataRules(c *closer) {
	on := func(n string) bool { return !c.o.noData[n] }
	if on("nsswitch") {
		r.dataFile(c, "nsswitch", "/etc/nsswitch.conf", "name service switch configuration")
		r.dataFile(c, "nsswitch", "/etc/host.conf", "resolver configuration")
	}
	if on("passwd") {
		who := "users and groups"
		if c.cmd.User != "" {
			who += " (USER " + c.cmd.User + ")"
		}
		a := r.dataFile(c, "passwd", "/etc/passwd", who)
		b := r.dataFile(c, "passwd", "/etc/group", who)
		if a || b {
			c.note("data passwd: /etc/passwd and /etc/group are bundled, but glibc opens them at fixed paths: a relocated program (on Lambda) reads the host's; turn off data rule passwd to leave them out")
		}
	}
	if on("tz") {
		r.dataTZ(c)
	}
	if on("locale") {
		r.dataLocale(c)
	}
	if on("certs") {
		const certs = "/etc/ssl/certs/ca-certificates.crt"
		if r.dataFile(c, "certs", certs, "CA certificates") {
			c.setEnv("SSL_CERT_FILE", "", certs)
		}
	}
}

// dataFile adds the regular file at p (after symlinks) for rule, when it
// exists and is small; it reports whether it was added.
func (r dataRule) dataFile(c *closer, rule, p, what string) bool {
	e, links, err := c.follow(p)
	if err != nil || e.Kind != Regular {
		return false
	}
	if e.Size > maxDataSize {
		c.note("data %s: left out %s (%d bytes, over %d); include it explicitly to bundle it", rule, p, e.Size, maxDataSize)
		return false
	}
	c.addPath(p, e, links, Reason{Kind: "data", Detail: rule + ": " + what})
	return true
}

// dataDir adds every file below dir for rule when the directory holds at
// most maxDataSize bytes.
func (r dataRule) dataDir(c *closer, rule, dir, what string) bool {
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
		c.note("data %s: left out %s (%d bytes, over %d); include '%s/**' explicitly to bundle it", rule, dir, size, maxDataSize, dir)
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
func (r dataRule) dataTZ(c *closer) {
	tz, tzSet := envValue(c.cmd.Env, "TZ")
	if r.dataFile(c, "tz", "/etc/localtime", "local time zone") && !tzSet {
		c.setEnv("TZ", ":", "/etc/localtime")
	}
	r.dataFile(c, "tz", "/etc/timezone", "local time zone name")
	if !tzSet || tz == "" {
		return
	}
	spec := strings.TrimPrefix(tz, ":")
	if path.IsAbs(spec) {
		if r.dataFile(c, "tz", spec, "TZ="+tz) {
			c.setEnv("TZ", ":", spec)
		}
		return
	}
	dir := "/usr/share/zoneinfo"
	if d, ok := envValue(c.cmd.Env, "TZDIR"); ok && path.IsAbs(d) {
		dir = path.Clean(d)
	}
	if r.dataDir(c, "tz", dir, "zoneinfo for TZ="+tz) {
		c.setEnv("TZDIR", "", dir)
	} else if r.dataFile(c, "tz", path.Join(dir, spec), "TZ="+tz) {
		c.setEnv("TZDIR", "", dir)
	}
}

// dataLocale adds the locale the image's LC_ALL, LC_CTYPE or LANG names
// (C and POSIX need none): /usr/lib/locale/NAME in glibc's normalized
// spelling (C.UTF-8 is C.utf8) or as written. LOCPATH points the bundled
// program at the copy. A locale only in the locale-archive is noted, not
// bundled: glibc opens the archive at a fixed path and ignores it when
// LOCPATH is set.
func (r dataRule) dataLocale(c *closer) {
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
		if r.dataDir(c, "locale", path.Join(base, n), "locale "+name) {
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

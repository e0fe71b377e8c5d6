package image

// The ELF rule's run-time modules: what glibc loads by name into a program
// that links libc, the NSS modules of /etc/nsswitch.conf and the gconv
// modules of iconv(3).

import (
	"path"
	"regexp"
	"strconv"
	"strings"
)

// nssBuiltin are the NSS services built into libc.so.6 since glibc 2.34.
var nssBuiltin = map[string]bool{"files": true, "dns": true}

var libcVersioned = regexp.MustCompile(`^libc-2\.(\d+)\.so$`)

// nss adds the NSS modules the image's /etc/nsswitch.conf names.
func (r elfRule) nss(c *closer) {
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
func (r elfRule) gconvModules(c *closer) {
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

package image

func init() { registerRule(10, func() rule { return elfRule{} }) }

// elfRule is the rule of ELF programs: a dynamic program needs its
// PT_INTERP loader and the libraries ld.so would load (linkmap.go); a
// program linking glibc's libc also needs the NSS modules its
// nsswitch.conf names and, with WithGconv, the gconv modules (nss.go).
type elfRule struct{}

func (elfRule) name() string           { return "elf" }
func (elfRule) interprets(string) bool { return false }

func (r elfRule) apply(c *closer, w work) (bool, error) {
	switch w := w.(type) {
	case runWork:
		if w.e.ELF == nil {
			return false, nil
		}
		return true, r.runELF(c, w.e)
	case finishWork:
		if c.libc != nil {
			r.nss(c)
			if c.o.gconv {
				r.gconvModules(c)
			}
		}
		return true, nil
	}
	return false, nil
}

// runELF adds the loader and the libraries of the ELF program e, once.
// The first link map holding libc is the one NSS and gconv modules are
// loaded into.
func (r elfRule) runELF(c *closer, e *Entry) error {
	if err := r.checkArch(c, e); err != nil {
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

// checkArch compares a program's ELF machine with the platform.
func (r elfRule) checkArch(c *closer, e *Entry) error {
	if c.want != "" && e.ELF.Machine != c.want {
		return &ArchError{Path: e.Path, Machine: e.ELF.Machine, Platform: c.cmd.Platform, Want: c.want}
	}
	return nil
}

package main

import (
	"debug/elf"
	"fmt"
)

// checkStatic fails when the ELF file at p asks for a program interpreter
// or shared libraries: the bootstrap must run on any Linux, with no loader.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has a PT_INTERP segment: not static", p)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %q: not static", p, libs)
	}
	return nil
}

package image

// This file holds the data types shared by the pieces of package image: the
// layer index (index.go), the ELF and script parsers (elf.go, script.go), the
// command resolver (command.go) and the closure (closure.go).

// Kind is the type of an indexed path after flattening.
type Kind uint8

// Kinds of paths in the flattened image. Hardlinks are resolved while
// indexing: a hardlink is a Regular entry whose content comes from the
// layer and tar name in Source.
const (
	Regular Kind = iota
	Dir
	Symlink
	Other // devices, fifos: indexed, never packaged
)

// Source says where a regular file's bytes are: the layer (0 = bottom) and
// the tar entry name inside that layer that carries them.
type Source struct {
	Layer int    `json:"layer"`
	Name  string `json:"name"`
}

// Entry is one path of the flattened image.
type Entry struct {
	// Path is clean and absolute ("/usr/bin/momentum").
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Mode holds the permission bits (and setuid etc.), as in the tar header.
	Mode int64 `json:"mode"`
	Size int64 `json:"size"`
	// Target is a symlink's target as stored (relative or absolute).
	Target string `json:"target,omitempty"`
	// Layer is the layer (0 = bottom) whose entry defines this path now.
	Layer int `json:"layer"`
	// Source is where a Regular entry's content is (differs from Layer/Path
	// for hardlinks).
	Source Source `json:"source"`
	// ELF is set for regular files that parsed as ELF, Script for files
	// starting with "#!".
	ELF    *ELFInfo    `json:"elf,omitempty"`
	Script *ScriptInfo `json:"script,omitempty"`
}

// ELFInfo is what the closure needs from an ELF file, read from its program
// headers and dynamic section (the same data ld.so uses; section headers may
// be stripped).
type ELFInfo struct {
	Class   int    `json:"class"`   // 32 or 64
	Machine string `json:"machine"` // "x86_64", "aarch64", ... (Lambda naming)
	// Type is "exec" or "dyn" (PIE executables and shared libraries).
	Type    string   `json:"type"`
	Interp  string   `json:"interp,omitempty"`  // PT_INTERP
	Needed  []string `json:"needed,omitempty"`  // DT_NEEDED in order
	RPath   []string `json:"rpath,omitempty"`   // DT_RPATH, split on ':'
	RunPath []string `json:"runpath,omitempty"` // DT_RUNPATH, split on ':'
	SOName  string   `json:"soname,omitempty"`
	// InterpOffset is the file offset of the PT_INTERP string and
	// InterpSize the segment's p_filesz (string plus NULs), so the packager
	// can rewrite it in place.
	InterpOffset int64 `json:"interp_offset,omitempty"`
	InterpSize   int64 `json:"interp_size,omitempty"`
}

// Static reports whether the file needs no loader.
func (e *ELFInfo) Static() bool { return e.Interp == "" && len(e.Needed) == 0 }

// ScriptInfo is a parsed "#!" line.
type ScriptInfo struct {
	Interpreter string `json:"interpreter"`   // "/usr/bin/env"
	Arg         string `json:"arg,omitempty"` // "python3" (Linux passes one optional argument)
}

// Layer describes one layer of the image, bottom first.
type Layer struct {
	Digest string `json:"digest"`  // compressed digest, as in the manifest
	DiffID string `json:"diff_id"` // uncompressed digest
	Size   int64  `json:"size"`    // compressed size
	// CreatedBy is the history entry's command, when the config has one.
	CreatedBy string `json:"created_by,omitempty"`
}

// Command is the program the image runs, resolved from its config and the
// flattened index.
type Command struct {
	// Entrypoint and Cmd as the config (or the override flags) gave them.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// Args is the full argv (Entrypoint+Cmd, shell form wrapped in
	// /bin/sh -c); Args[0] is kept as written.
	Args []string `json:"args"`
	// Path is the image path of the program Args[0] names, after PATH lookup
	// and WORKDIR, before symlinks are resolved.
	Path       string   `json:"path"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workdir,omitempty"`
	User       string   `json:"user,omitempty"`
	// Platform is the image's platform ("linux/amd64"); Closure checks the
	// program's ELF machine against it. Empty skips the check.
	Platform string `json:"platform,omitempty"`
}

// Reason says why a file is in the closure.
type Reason struct {
	// Kind is one of "entrypoint", "interpreter" (of a script),
	// "loader" (PT_INTERP), "needed" (DT_NEEDED), "runtime" (loaded by name
	// at run time: NSS, gconv), "symlink" (a link on the way to another
	// closure file), "config" (data read at run time), "include" (--include),
	// and with WithImage: "command" (a program a shell script runs),
	// "script" (a file a shell sources or an interpreter is given),
	// "module" (a Python or Perl module imported), "library" (an
	// interpreter's library tree), "data" (a DataRule's file; Detail starts
	// with the rule's name); with WithTraced: "traced" (opened or executed
	// by a traced run, Detail "seen at run time").
	Kind string `json:"kind"`
	// By is the image path of the file that caused it ("" for entrypoint
	// and include), Detail the soname, glob or rule that matched.
	By     string `json:"by,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// File is one path of the closure.
type File struct {
	Entry
	// Why lists every reason the file is needed, first found first.
	Why []Reason `json:"why"`
}

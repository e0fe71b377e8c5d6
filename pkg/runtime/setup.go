package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ManifestVersion is the newest manifest format this bootstrap understands.
const ManifestVersion = 1

// Defaults applied by LoadManifest to fields the packager left empty (the
// suffix: left out).
const (
	DefaultInputMode    = "stdin"
	DefaultInputSuffix  = ".csv"
	DefaultOutputPrefix = "output/"
)

// Input modes.
const (
	InputStdin = "stdin"
	InputFile  = "file"
)

// How the program's stdout reaches the uploader (Output.Stdout).
const (
	// StdoutFile: a file under /tmp, read behind the program as it grows
	// (the default; see spool_linux.go).
	StdoutFile = "file"
	// StdoutPipe: a pipe, for a program that must see one.
	StdoutPipe = "pipe"
)

// errNoSpool is returned where stdout cannot be a followed file.
var errNoSpool = errors.New("stdout as a file is not supported here")

// InputPlaceholder is replaced in Args by the input file's path when
// Input.Mode is "file".
const InputPlaceholder = "{input}"

// OutputPlaceholder is replaced in Args by the path of a fresh file under
// /tmp; after a successful exit that file, not stdout, is uploaded to the
// output key.
const OutputPlaceholder = "{output}"

// defaultPath is the PATH Docker gives a container whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LoadManifest reads taskRoot/extract.json, checks it and fills in the
// documented defaults (input mode "stdin", suffix ".csv", output prefix
// "output/"). An absent input prefix means none: the packager writes its
// default "input/" explicitly, and JSON's omitempty cannot tell an empty
// prefix (--prefix "") from an absent one. The suffix is the other way
// round: an absent one is ".csv", and an empty one, always written, means
// every key (--suffix ""), as the trigger's filter does.
func LoadManifest(taskRoot string) (*Manifest, error) {
	p := filepath.Join(taskRoot, ManifestPath)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	// Unmarshal keeps what the document does not set: the default suffix
	// stays unless the manifest writes one, "" included.
	m := Manifest{Input: Input{Suffix: DefaultInputSuffix}}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", p, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	return &m, nil
}

// check validates m and applies the defaults.
func (m *Manifest) check() error {
	var errs []error
	if m.Version > ManifestVersion {
		errs = append(errs, fmt.Errorf("version %d is newer than this bootstrap understands (%d)", m.Version, ManifestVersion))
	}
	if m.Program == "" {
		errs = append(errs, errors.New("no program"))
	} else if !path.IsAbs(m.Program) {
		errs = append(errs, fmt.Errorf("program %q is not an absolute image path", m.Program))
	}
	if len(m.Args) == 0 && m.Program != "" {
		m.Args = []string{m.Program}
	}
	if m.Input.Mode == "" {
		m.Input.Mode = DefaultInputMode
	}
	if m.Input.Mode != InputStdin && m.Input.Mode != InputFile {
		errs = append(errs, fmt.Errorf("input mode %q is neither %q nor %q", m.Input.Mode, InputStdin, InputFile))
	}
	if m.Output.Prefix == "" {
		m.Output.Prefix = DefaultOutputPrefix
	}
	if m.Output.Stdout == "" {
		m.Output.Stdout = StdoutFile
	}
	if m.Output.Stdout != StdoutFile && m.Output.Stdout != StdoutPipe {
		errs = append(errs, fmt.Errorf("stdout mode %q is neither %q nor %q", m.Output.Stdout, StdoutFile, StdoutPipe))
	}
	errs = append(errs, m.Output.check(m.Args)...)
	if m.LinkDir != "" && !filepath.IsAbs(m.LinkDir) {
		errs = append(errs, fmt.Errorf("link dir %q is not absolute", m.LinkDir))
	}
	switch m.Format {
	case "", FormatZip:
	case FormatImage:
		if m.LinkDir != "" {
			errs = append(errs, fmt.Errorf("an image package has no link dir, got %q", m.LinkDir))
		}
	default:
		errs = append(errs, fmt.Errorf("format %q is neither %q nor %q", m.Format, FormatZip, FormatImage))
	}
	return errors.Join(errs...)
}

// filesRoot is the directory that holds the image's files at their image
// paths: RootDir under the task root in a zip, / in an image package.
func filesRoot(m *Manifest, taskRoot string) string {
	if m.Format == FormatImage {
		return string(filepath.Separator)
	}
	return filepath.Join(taskRoot, RootDir)
}

// rootPath maps an image path to the file in the package.
func rootPath(m *Manifest, taskRoot, imagePath string) string {
	return filepath.Join(filesRoot(m, taskRoot), filepath.FromSlash(path.Clean("/"+imagePath)))
}

// ProgramPath returns the host path of the manifest's program inside the
// package, with symlinks followed inside rootfs (an absolute link target is
// an image path, never a host path). In an image package the program is at
// its image path.
func ProgramPath(m *Manifest, taskRoot string) (string, error) {
	root := filesRoot(m, taskRoot)
	p, err := resolveInRoot(root, m.Program)
	if err != nil {
		return "", fmt.Errorf("resolving program %q: %w", m.Program, err)
	}
	return p, nil
}

// resolveInRoot follows symlinks of the image path p, each resolved inside
// root, and returns the host path of the final file.
func resolveInRoot(root, p string) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("too many levels of symbolic links at %q", next)
		}
		target, err := os.Readlink(filepath.Join(root, filepath.FromSlash(next)))
		if err != nil {
			return "", err
		}
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		rest := strings.Split(strings.Trim(path.Clean(target), "/"), "/")
		parts = append(rest, parts...)
		cur = "/"
	}
	return filepath.Join(root, filepath.FromSlash(cur)), nil
}

// Setup prepares the sandbox for the program, once per process: it points
// the manifest's LinkDir at taskRoot (atomically, replacing a link that
// points elsewhere) and, when WritableWorkDir is set, the WORKDIR is
// missing from the package or is Output.Dir, makes the writable copy
// WorkDir returns; it makes the writable copy of an Output.Dir that is
// not in that copy the same way, under the temporary directory.
func Setup(m *Manifest, taskRoot string) error {
	if m.LinkDir != "" {
		if err := linkTaskRoot(m.LinkDir, taskRoot); err != nil {
			return err
		}
	}
	if dir, ok := writableWorkDir(m, taskRoot); ok {
		if err := copyWorkDir(rootPath(m, taskRoot, m.WorkDir), dir); err != nil {
			return fmt.Errorf("preparing writable workdir %q: %w", m.WorkDir, err)
		}
	}
	if dir, inWorkDir := outDirPath(m, taskRoot); dir != "" && !inWorkDir {
		if err := copyWorkDir(rootPath(m, taskRoot, m.Output.Dir), dir); err != nil {
			return fmt.Errorf("preparing the output directory %q: %w", m.Output.Dir, err)
		}
	}
	return nil
}

// linkTaskRoot makes link a symlink to target, atomically.
func linkTaskRoot(link, target string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("creating link dir parent: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp%d", link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking %s to the task root: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("linking %s to the task root: %w", link, err)
	}
	return nil
}

// WorkDir returns the host directory the program runs in: the WORKDIR in
// the package, or its writable copy under the temporary directory.
func WorkDir(m *Manifest, taskRoot string) string {
	if dir, ok := writableWorkDir(m, taskRoot); ok {
		return dir
	}
	return rootPath(m, taskRoot, m.WorkDir)
}

// writableWorkDir names the writable copy of the WORKDIR and says whether
// one is needed: when asked for, when it is Output.Dir, or when the
// package has no such directory.
func writableWorkDir(m *Manifest, taskRoot string) (string, bool) {
	need := m.WritableWorkDir || isWorkDir(m)
	if !need {
		fi, err := os.Stat(rootPath(m, taskRoot, m.WorkDir))
		need = err != nil || !fi.IsDir()
	}
	if !need {
		return "", false
	}
	sum := sha256.Sum256([]byte(taskRoot + "\x00" + m.WorkDir))
	return filepath.Join(os.TempDir(), "extract-workdir-"+hex.EncodeToString(sum[:6])), true
}

// copyWorkDir copies the tree at src to dst unless dst exists (a previous
// bootstrap in the same sandbox made it). A missing src gives an empty dst.
func copyWorkDir(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp")
	if err != nil {
		return err
	}
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		if err := copyTree(src, tmp); err != nil {
			_ = os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		if _, statErr := os.Lstat(dst); statErr == nil {
			return nil // made concurrently
		}
		return err
	}
	return nil
}

// copyTree copies regular files, directories and symlinks (as symlinks) of
// src into the existing directory dst, keeping permission bits and making
// everything writable by the owner.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case d.IsDir():
			return os.Mkdir(out, info.Mode().Perm()|0o700)
		case d.Type().IsRegular():
			return copyFile(p, out, info.Mode().Perm()|0o600)
		default:
			return nil // devices, fifos and sockets are not copied
		}
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Environ returns the program's environment: what its container would
// see, not Lambda's runtime environment. From first to last, a later
// setting replacing an earlier one of the same name:
//
//   - base (the bootstrap's environment: Lambda's, with the function's own
//     variables, deploy --env) without the variables Lambda sets for the
//     runtime (see RuntimeVariable): no AWS_* (the role's credentials,
//     AWS_LAMBDA_RUNTIME_API, the region), no LAMBDA_*, _HANDLER,
//     _X_AMZN_*, no TZ=:UTC, LANG, PATH, LD_LIBRARY_PATH or language
//     search paths. What is left are the function's variables (and, under
//     extract invoke, TMPDIR). With m.PassAWSCredentials, AWS_ACCESS_KEY_ID,
//     AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
//     AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_* are kept.
//   - the manifest's Env: the image's ENV and, in a zip, the closure's
//     variables the packager wrote (TZ for the bundled /etc/localtime,
//     TZDIR, LOCPATH, SSL_CERT_FILE, PERL5LIB, PYTHONPATH). So TZ and LANG
//     are the image's, or unset.
//   - PATH: the image's PATH entries mapped into the package (image order
//     kept; Docker's default PATH when the image sets none).
//   - LD_LIBRARY_PATH: LibraryPath and the image's own LD_LIBRARY_PATH
//     entries mapped into the package, unset when empty, so the host's
//     library directories are never searched.
//   - HOME when neither sets it: /tmp in a zip; in an image package the
//     packager writes the image USER's home (as Docker sets it) into Env,
//     else "/".
//
// In an image package, files are at their image paths, so PATH and
// LD_LIBRARY_PATH are the image's as written.
func Environ(m *Manifest, taskRoot string, base []string) []string {
	vars := map[string]string{}
	var order []string
	set := func(kv string) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return
		}
		if _, seen := vars[k]; !seen {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if RuntimeVariable(k) && !(m.PassAWSCredentials && awsVariable(k)) {
			continue
		}
		set(kv)
	}
	imagePath, imageLibs := defaultPath, ""
	for _, kv := range m.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH":
			imagePath = v
		case "LD_LIBRARY_PATH":
			imageLibs = v
		default:
			set(kv)
		}
	}
	set("PATH=" + mapList(m, taskRoot, filepath.SplitList(imagePath)))
	libs := append(append([]string(nil), m.LibraryPath...), filepath.SplitList(imageLibs)...)
	if l := mapList(m, taskRoot, libs); l != "" {
		set("LD_LIBRARY_PATH=" + l)
	} else {
		delete(vars, "LD_LIBRARY_PATH")
	}
	if vars["HOME"] == "" {
		home := "/tmp"
		if m.Format == FormatImage {
			home = "/"
		}
		set("HOME=" + home)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		if v, ok := vars[k]; ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// RuntimeVariable reports whether the environment variable name is one
// Lambda sets for the runtime rather than for the program: the runtime API
// and function settings (AWS_*, LAMBDA_*, _HANDLER, _X_AMZN_TRACE_ID,
// _AWS_XRAY_*), the role's credentials (AWS_ACCESS_KEY_ID, ...), and the
// values of Lambda's own image (TZ=:UTC, LANG, PATH, LD_LIBRARY_PATH and the
// language runtimes' search paths). The program does not see them (see
// Environ): a container never had them. A function variable of such a name
// (deploy --env TZ=...) does not reach the program either: the image's ENV
// sets those.
func RuntimeVariable(name string) bool {
	for _, p := range []string{"AWS_", "_AWS_", "LAMBDA_", "_X_AMZN_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "_HANDLER", "TZ", "LANG", "PATH", "LD_LIBRARY_PATH", "NODE_PATH", "PYTHONPATH", "GEM_PATH":
		return true
	}
	return false
}

// awsVariable reports whether name is one of the variables
// Manifest.PassAWSCredentials passes: what an AWS SDK needs to make the
// function's calls (credentials, region, endpoints), and not the runtime
// API or the function's settings.
func awsVariable(name string) bool {
	switch name {
	case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL":
		return true
	}
	return strings.HasPrefix(name, "AWS_ENDPOINT_URL_")
}

// mapList maps image directories into the package, dropping empty and
// repeated entries.
func mapList(m *Manifest, taskRoot string, dirs []string) string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		if d == "" || !path.IsAbs(d) {
			continue
		}
		p := rootPath(m, taskRoot, d)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, string(filepath.ListSeparator))
}

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/comingout/extract/pkg/image"
	xruntime "github.com/comingout/extract/pkg/runtime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultUID is the user and group ID an image package runs as unless
// WithUID sets others: Lambda runs container images as a non-root user it
// chooses (not the image's USER), owning none of the image's files.
const DefaultUID = 65534

// lambdaDefaultPath and lambdaDefaultLibraryPath are the PATH and
// LD_LIBRARY_PATH Lambda sets when the image's ENV has none.
const (
	lambdaDefaultPath        = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
	lambdaDefaultLibraryPath = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)

// imageOptions are the options of Invoke that concern image
// packages.
type imageOptions struct {
	uid, gid int
	uidSet   bool
	platform string
	open     []image.Option
}

// WithUID sets the user and group IDs an image package runs as (default
// DefaultUID for both). Lambda picks a non-root uid of its own
// (reportedly 993), so a package must work whatever it is; root (0)
// is refused. Zip packages run as the caller.
func WithUID(uid, gid int) Option {
	return func(o *options) error {
		if uid <= 0 || gid <= 0 || int64(uid) >= 1<<32-1 || int64(gid) >= 1<<32-1 {
			return fmt.Errorf("uid:gid %d:%d: want non-root IDs (Lambda never runs a function as root)", uid, gid)
		}
		o.image.uid, o.image.gid, o.image.uidSet = uid, gid, true
		return nil
	}
}

// WithPlatform selects the platform ("linux/arm64") of an image
// package given as a multi-platform index. Default: a single-platform image
// runs whatever its platform (a Lambda image has exactly one); from an
// index, image.DefaultPlatform.
func WithPlatform(p string) Option {
	return func(o *options) error {
		if p == "" {
			return errors.New("empty platform")
		}
		o.image.platform = p
		return nil
	}
}

// WithImageOptions passes options to image.Open for an image package
// (blob cache, registry credentials, progress). The platform is set with
// WithPlatform.
func WithImageOptions(opts ...image.Option) Option {
	return func(o *options) error {
		o.image.open = append(o.image.open, opts...)
		return nil
	}
}

// isZipPackage tells a zip package from an image reference: a file that
// starts like a zip, a local file that is neither a zip nor a tar (the
// zip path says it is no zip), or a path ending in ".zip" without an image
// transport (so that a missing zip fails as it always did).
func isZipPackage(pkg string) bool {
	if f, err := os.Open(pkg); err == nil {
		defer f.Close()
		head := make([]byte, 512)
		n, _ := io.ReadFull(f, head)
		head = head[:n]
		if bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")) {
			return true
		}
		isTar := n >= 262 && bytes.Equal(head[257:262], []byte("ustar"))
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && !isTar && !strings.Contains(pkg, ":") {
			return true
		}
	}
	if strings.HasSuffix(strings.ToLower(pkg), ".zip") {
		for _, t := range []string{"oci:", "oci-archive:", "docker-archive:", "docker-daemon:", "docker://"} {
			if strings.HasPrefix(pkg, t) {
				return false
			}
		}
		return true
	}
	return false
}

// imageSandbox is what the sandbox needs to start an image's ENTRYPOINT.
type imageSandbox struct {
	// root is the flattened image, tmp the host directory mounted at its
	// /tmp.
	root, tmp string
	// path is the program's path inside root, args its argv, dir the
	// working directory inside root.
	path string
	args []string
	dir  string
	// env is the program's environment (the image's ENV until runImage
	// puts Lambda's variables over it).
	env []string
	uid int
	gid int
}

// invokeImage runs the Lambda container image ref the way Lambda runs
// container images: the image is flattened into a temporary root
// (image.Flatten), its config's ENTRYPOINT+CMD is started there with the
// config's ENV (then Lambda's own variables) and WORKDIR (default /), as a
// non-root user (WithUID), chrooted in a private mount namespace where the
// root is read-only, /tmp is a fresh writable directory (mode 1777), /proc
// is mounted and /dev holds null, zero, full, random and urandom. The
// entrypoint is PID 1 of its own PID namespace, so that nothing it started
// outlives the invocation (or the invoker). The network is the host's, so
// the Runtime API and S3 on 127.0.0.1 are reached as from a zip package. It
// needs Linux and root: see imageSandboxSupported.
func invokeImage(ctx context.Context, ref string, o options) (*InvokeResult, error) {
	if err := imageSandboxSupported(); err != nil {
		return nil, fmt.Errorf("invoke %s: %w", ref, err)
	}
	inv := &invocation{o: o, zipPath: ref}
	defer inv.cleanup()
	return inv.runImage(ctx, ref)
}

// runImage invokes the image ref: flattened into a sandbox, its
// entrypoint started there with the image's ENV under Lambda's variables.
func (inv *invocation) runImage(ctx context.Context, ref string) (*InvokeResult, error) {
	t0 := time.Now()
	sb, err := inv.flattenImage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	name := imageFunctionName(ref)
	env, payload, err := inv.serve(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	sb.env = imageEnviron(sb.env, append(env, inv.lambdaEnv(name, "/var/task", "/var/runtime")...))
	started := time.Now()
	if err := inv.startImage(sb); err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	inv.o.logger.Debug("image entrypoint started", "pid", inv.cmd.Process.Pid, "uid", sb.uid, "prepared", started.Sub(t0))
	return inv.await(ctx, payload, started)
}

// flattenImage opens and indexes the image ref and writes its final
// filesystem to the root of a new sandbox in the invocation's work
// directory. The sandbox's env is the image's ENV, for runImage to put
// Lambda's variables over.
func (inv *invocation) flattenImage(ctx context.Context, ref string) (*imageSandbox, error) {
	t0 := time.Now()
	work, err := os.MkdirTemp("", "extract-invoke-")
	if err != nil {
		return nil, err
	}
	inv.work = work
	img, err := openInvokeImage(ctx, ref, inv.o)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	tOpen := time.Now()
	idx, err := image.BuildIndex(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("indexing %s: %w", ref, err)
	}
	tIndex := time.Now()
	sb := &imageSandbox{root: filepath.Join(work, "root"), tmp: filepath.Join(work, "tmp"), uid: DefaultUID, gid: DefaultUID}
	if inv.o.image.uidSet {
		sb.uid, sb.gid = inv.o.image.uid, inv.o.image.gid
	}
	if err := image.Flatten(ctx, img, idx, sb.root); err != nil {
		return nil, err
	}
	inv.dir = sb.root
	if err := sb.makeTmp(); err != nil {
		return nil, err
	}
	if err := sb.entrypoint(idx, ref, img.Config.Config); err != nil {
		return nil, err
	}
	if m := imageManifest(idx, sb.root, sb.path, inv.o.logger); m != nil {
		inv.inputPrefix, inv.outputPrefix = m.Input.Prefix, m.Output.Prefix
	}
	inv.o.logger.Debug("image flattened", "ref", ref, "digest", img.Digest, "root", sb.root, "entrypoint", sb.args,
		"open", tOpen.Sub(t0), "index", tIndex.Sub(tOpen), "flatten", time.Since(tIndex))
	return sb, nil
}

// makeTmp makes the host directory mounted at the sandbox's /tmp, with
// /tmp's mode 1777.
func (sb *imageSandbox) makeTmp() error {
	if err := os.Mkdir(sb.tmp, 0o700); err != nil {
		return err
	}
	return os.Chmod(sb.tmp, 0o777|os.ModeSticky)
}

// entrypoint sets the sandbox's program, argv, working directory and
// (image) environment from the config of the image ref.
func (sb *imageSandbox) entrypoint(idx *image.Index, ref string, cfg v1.Config) error {
	sb.args = append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(sb.args) == 0 {
		return fmt.Errorf("%s has no ENTRYPOINT or CMD", ref)
	}
	sb.dir = "/"
	if cfg.WorkingDir != "" {
		sb.dir = path.Clean("/" + cfg.WorkingDir)
	}
	p, err := entrypointPath(idx, sb.args[0], sb.dir, cfg.Env)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	sb.path, sb.env = p, cfg.Env
	return nil
}

// openInvokeImage opens ref; without WithPlatform, a single-platform
// image of another platform than image.DefaultPlatform is opened as it is.
func openInvokeImage(ctx context.Context, ref string, o options) (*image.Image, error) {
	if fi, err := os.Stat(ref); err == nil && !strings.Contains(ref, ":") {
		// A local tar or directory: image.Open would take it for a
		// registry reference.
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory: an OCI layout is oci:%s", ref, ref)
		}
		return nil, fmt.Errorf("%s is a tar, not a zip: an image package is docker-archive:%s (docker save) or oci-archive:%s", ref, ref, ref)
	}
	opts := append([]image.Option{image.WithLogger(o.logger)}, o.image.open...)
	if o.image.platform != "" {
		return image.Open(ctx, ref, append(opts, image.WithPlatform(o.image.platform))...)
	}
	img, err := image.Open(ctx, ref, opts...)
	var pe *image.PlatformError
	if errors.As(err, &pe) && len(pe.Available) == 1 {
		img, err = image.Open(ctx, ref, append(opts, image.WithPlatform(pe.Available[0]))...)
	}
	return img, err
}

// entrypointPath finds the program argv0 names inside the image: a path
// with a "/" as it is (relative to the working directory), a bare name
// through the image ENV's PATH (Lambda's default PATH when it has none).
// The program must be an executable regular file after symlinks.
func entrypointPath(idx *image.Index, argv0, workDir string, env []string) (string, error) {
	executable := func(p string) bool {
		_, e, err := idx.Resolve(p)
		return err == nil && e.Kind == image.Regular && e.Mode&0o111 != 0
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !path.IsAbs(p) {
			p = path.Join(workDir, p)
		}
		if !executable(p) {
			return "", fmt.Errorf("the ENTRYPOINT %q is not an executable file in the image", argv0)
		}
		return argv0, nil
	}
	search := lambdaDefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, d := range filepath.SplitList(search) {
		if d == "" || !path.IsAbs(d) {
			continue
		}
		if p := path.Join(d, argv0); executable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("the ENTRYPOINT %q is not in the image's PATH %q", argv0, search)
}

// imageManifest reads an extract image package's manifest: next to the
// entrypoint (where the bootstrap looks), else in the task root. Another
// image has none (nil): WithCSV puts the file at the bucket's top level.
func imageManifest(idx *image.Index, root, program string, log *slog.Logger) *xruntime.Manifest {
	exe, _, err := idx.Resolve(program)
	if err != nil {
		return nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil
	}
	defer r.Close()
	for _, p := range []string{path.Join(path.Dir(exe), xruntime.ManifestPath), path.Join("/var/task", xruntime.ManifestPath)} {
		b, err := r.ReadFile(strings.TrimPrefix(p, "/"))
		if err != nil {
			continue
		}
		var m xruntime.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			log.Debug("unreadable extract manifest in the image", "path", p, "error", err)
			return nil
		}
		return &m
	}
	return nil
}

// imageEnviron is the environment Lambda gives a container image's
// ENTRYPOINT: the image's ENV, then Lambda's variables over it, and
// Lambda's PATH and LD_LIBRARY_PATH only when the image sets none.
func imageEnviron(imageEnv, lambdaEnv []string) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range imageEnv {
		set(kv)
	}
	for _, kv := range lambdaEnv {
		set(kv)
	}
	if _, ok := index["PATH"]; !ok {
		set("PATH=" + lambdaDefaultPath)
	}
	if _, ok := index["LD_LIBRARY_PATH"]; !ok {
		set("LD_LIBRARY_PATH=" + lambdaDefaultLibraryPath)
	}
	return out
}

var functionNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// imageFunctionName names the local function after the image: the
// directory or file of oci:/docker-archive:/oci-archive:, the repository's
// last component of a registry reference.
func imageFunctionName(ref string) string {
	name := ref
	for _, t := range []string{"oci:", "oci-archive:", "docker-archive:"} {
		if rest, ok := strings.CutPrefix(ref, t); ok {
			if t == "oci:" {
				// oci:DIR[:TAG]
				if i := strings.LastIndex(rest, ":"); i > 0 && !strings.Contains(rest[i:], "/") {
					rest = rest[:i]
				}
			} else if i := strings.Index(rest, ":"); i > 0 {
				rest = rest[:i]
			}
			name = filepath.Base(strings.TrimRight(rest, "/"))
			if t != "oci:" {
				name = strings.TrimSuffix(name, filepath.Ext(name))
			}
			break
		}
	}
	if name == ref {
		r := strings.TrimPrefix(ref, "docker://")
		if i := strings.Index(r, "@"); i >= 0 {
			r = r[:i]
		}
		r = path.Base(r)
		if i := strings.Index(r, ":"); i >= 0 {
			r = r[:i]
		}
		name = r
	}
	name = strings.Trim(functionNameUnsafe.ReplaceAllString(name, "-"), "-")
	if len(name) > 64 {
		name = name[:64]
	}
	if name == "" {
		name = "function"
	}
	return name
}

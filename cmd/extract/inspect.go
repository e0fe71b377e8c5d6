package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/comingout/extract/pkg/image"
	"github.com/comingout/extract/pkg/lambda"
	"github.com/urfave/cli/v2"
)

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "show an image's config, its layers (with dive's efficiency) and the files its program needs",
	ArgsUsage: "IMAGE",
	Description: `Shows what extract sees in IMAGE: the config (entrypoint, cmd, env, workdir,
user, platform, digest), the layers with their sizes, commands and dive's
efficiency score and wasted bytes, and the closure of the program the
ENTRYPOINT runs: every file, its size, why it is needed and which layer it
comes from. Nothing from the image is run, unless --trace FILE asks to run
the program once on FILE in a sandbox of the image (see docs/trace.md): the
files it opens or executes join the closure as "seen at run time", and the
TRACE section lists what the trace added to the static rules. The Closure
flags are those of package and deploy, with the same meaning: the closure
shown is the one they would package.

PATHS lists the image paths that closure files name by absolute path
(compiled into a program, in a script or a config file) and that a zip would
move to /var/task/rootfs: an interpreter's library home, a data directory, an
/etc config file. The C library's own paths, standard directories and what
the zip already relocates do not count. Any such path makes --format auto
pick a Lambda container image (files at their original paths) over a zip;
the section's last line says which. PATHS reads the closure's ELF files, scripts and
small text files once more (from the bytes the index kept, else only the layers
holding them), also with --no-scan.

IMAGE: REF or docker://REF, docker-daemon:NAME:TAG, docker-archive:FILE.tar,
oci:DIR[:TAG], oci-archive:FILE.tar.

The report goes to stdout (one JSON document with --json); download progress
goes to stderr. A missing entrypoint or library exits with status 3 after
the config and layers are printed.

Examples:
  extract inspect gcr.io/my-project/momentum:v1
  extract inspect --platform linux/arm64 docker-archive:momentum.tar
  extract inspect python:3.12-slim --entrypoint /usr/local/bin/python3 --include '/app/**'
  extract inspect oci:./layout:v1 --exclude '/usr/share/**' --json | jq '.closure.files[].path'
  extract inspect oci:./layout:v1 --trace sample.csv`,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "platform", DefaultText: image.DefaultPlatform,
			Usage: "platform `OS/ARCH[/VARIANT]` to select from a multi-platform image"},
		&cli.BoolFlag{Name: "no-layers", Usage: "skip dive's layer analysis (made in the same pass as the index; it takes memory for every tar entry)"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
	}, closureFlags()...),
	Action: inspectAction,
}

func inspectAction(c *cli.Context) error {
	args, err := positionalArgs(c)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usageError{"inspect: want exactly one IMAGE argument (see extract inspect --help)"}
	}
	ref := args[0]
	img, err := image.Open(c.Context, ref, openOptions(c)...)
	if err != nil {
		return packageExit(err)
	}
	defer img.Close()
	popts := closurePackageOptions(c)
	ropts, err := lambda.ResolveOptions(popts...)
	if err != nil {
		return err
	}
	// One pass over the layers gives the index and dive's report. The
	// steps package logs, inspect prints on stdout: no log of them.
	ropts = append(ropts, image.WithLayerReport(!c.Bool("no-layers")), image.WithResolveLogger(slog.New(slog.DiscardHandler)))
	r, cerr := image.Resolve(c.Context, img, ropts...)
	if r == nil {
		return cerr
	}
	adviseRules(r.Closure)
	var paths *inspectPaths
	if cerr == nil {
		refs, err := lambda.OriginalPaths(c.Context, img, r.Index, r.Command, r.Closure, popts...)
		if err != nil {
			return err
		}
		paths = &inspectPaths{Refs: refs, SlimOmits: lambda.SlimOmits(r.Index, r.Closure)}
		paths.Format, paths.Reason = image.AutoFormat(r.Closure, refs)
	}
	if c.Bool("json") {
		if err := printInspectJSON(stdout(c), ref, img, r, paths, cerr); err != nil {
			return err
		}
	} else {
		printInspect(stdout(c), ref, img, r.Report, r.Command, r.Closure)
		printPaths(stdout(c), paths)
		printTrace(stdout(c), r.Trace)
	}
	if cerr != nil {
		return packageExit(cerr)
	}
	return nil
}

// printInspectJSON writes the --json document: what Resolve resolved,
// the PATHS section and the error that stopped it, if any.
func printInspectJSON(w io.Writer, ref string, img *image.Image, r *image.Resolved, paths *inspectPaths, cerr error) error {
	doc := inspectDoc{Image: ref, Digest: img.Digest, Platform: img.Platform.String(), Config: configOf(img),
		Layers: img.Layers, Report: r.Report, Command: r.Command, Closure: r.Closure, Trace: r.Trace}
	if paths != nil {
		doc.PathRefs, doc.Format, doc.FormatReason = append([]image.PathRef{}, paths.Refs...), paths.Format, paths.Reason
		doc.SlimOmits = &paths.SlimOmits
	}
	if cerr != nil {
		doc.Error = cerr.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// printTrace writes the TRACE section: the run, and what it added to the
// closure of the static rules.
func printTrace(w io.Writer, t *image.TraceSummary) {
	if t == nil || t.Run == nil {
		return
	}
	r := t.Run
	fmt.Fprintln(w)
	status := fmt.Sprintf("exit %d", r.ExitCode)
	switch {
	case r.TimedOut:
		status = "killed at the timeout"
	case r.Signal != "":
		status = "killed by " + r.Signal
	}
	fmt.Fprintf(w, "TRACE (%s, %d processes, ran %s, %s in all; %d image files seen at run time)\n",
		status, r.Processes, r.RunDuration.Round(time.Millisecond), r.Duration.Round(time.Millisecond), len(r.Paths))
	fmt.Fprintf(w, "  static rules:    %d files, %s (%s)\n", t.StaticFiles, humanBytes(t.StaticBytes), t.StaticDuration.Round(time.Microsecond))
	fmt.Fprintf(w, "  with the trace:  %d files, %s\n", t.Files, humanBytes(t.Bytes))
	if len(t.Added) == 0 {
		fmt.Fprintln(w, "  the trace added nothing the static rules missed")
	} else {
		fmt.Fprintln(w, "  added by the trace (missed by the static rules):")
		for _, p := range t.Added {
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	if r.ExitCode != 0 && strings.TrimSpace(r.Stderr) != "" {
		fmt.Fprintf(w, "  stderr of the traced run ends with:\n")
		for _, l := range strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// inspectPaths is what the PATHS section shows: the closure's references
// to original paths and the format --format auto picks.
type inspectPaths struct {
	Refs           []image.PathRef
	Format, Reason string
	// SlimOmits is what --slim leaves out of a whole image package.
	SlimOmits lambda.FileCount
}

// printPaths writes the PATHS section.
func printPaths(w io.Writer, p *inspectPaths) {
	if p == nil {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "PATHS (image paths closure files name, which a zip would move to /var/task/rootfs)")
	if len(p.Refs) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FILE\tNAMES\tKIND\tBUNDLED")
		for _, r := range p.Refs {
			bundled := "no"
			if r.Bundled {
				bundled = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.File, r.Path, r.Kind, bundled)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "an image package with --slim leaves out %d files, %s, of the whole image\n", p.SlimOmits.Files, humanBytes(p.SlimOmits.Bytes))
	switch {
	case p.Format == image.FormatZip:
		fmt.Fprintln(w, "format auto picks: zip")
	case image.NeedsOriginalPaths(p.Refs):
		fmt.Fprintln(w, "format auto picks: image (files at their original paths: see --format image)")
	default:
		fmt.Fprintf(w, "format auto picks: image (%s)\n", p.Reason)
	}
}

// inspectDoc is the --json document.
type inspectDoc struct {
	Image    string               `json:"image"`
	Digest   string               `json:"digest"`
	Platform string               `json:"platform"`
	Config   inspectConfig        `json:"config"`
	Layers   []image.Layer        `json:"layers"`
	Report   *image.Report        `json:"layer_report,omitempty"`
	Command  *image.Command       `json:"command,omitempty"`
	Closure  *image.ClosureResult `json:"closure,omitempty"`
	Trace    *image.TraceSummary  `json:"trace,omitempty"`
	// PathRefs, Format and FormatReason are the PATHS section; null and
	// empty when the closure failed.
	PathRefs     []image.PathRef   `json:"path_refs"`
	Format       string            `json:"format,omitempty"`
	FormatReason string            `json:"format_reason,omitempty"`
	SlimOmits    *lambda.FileCount `json:"slim_omits,omitempty"`
	Error        string            `json:"error,omitempty"`
}

// inspectConfig is the part of the image config inspect shows.
type inspectConfig struct {
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env"`
	WorkingDir string   `json:"workdir"`
	User       string   `json:"user"`
}

func configOf(img *image.Image) inspectConfig {
	if img.Config == nil {
		return inspectConfig{}
	}
	cfg := img.Config.Config
	return inspectConfig{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User}
}

// printInspect writes the human report: the config, the layers and the
// closure (when it resolved).
func printInspect(w io.Writer, ref string, img *image.Image, rep *image.Report, cmd *image.Command, res *image.ClosureResult) {
	printConfig(w, ref, img, cmd)
	printLayers(w, img, rep)
	if res != nil {
		printClosure(w, res)
	}
}

// printConfig writes the image, its config and the command it runs.
func printConfig(w io.Writer, ref string, img *image.Image, cmd *image.Command) {
	cfg := configOf(img)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image:\t%s\n", ref)
	fmt.Fprintf(tw, "digest:\t%s\n", img.Digest)
	fmt.Fprintf(tw, "platform:\t%s\n", img.Platform.String())
	fmt.Fprintf(tw, "entrypoint:\t%s\n", jsonList(cfg.Entrypoint))
	fmt.Fprintf(tw, "cmd:\t%s\n", jsonList(cfg.Cmd))
	if cmd != nil {
		fmt.Fprintf(tw, "runs:\t%s (%s)\n", jsonList(cmd.Args), cmd.Path)
	}
	fmt.Fprintf(tw, "workdir:\t%s\n", orNone(cfg.WorkingDir))
	fmt.Fprintf(tw, "user:\t%s\n", orNone(cfg.User))
	if len(cfg.Env) == 0 {
		fmt.Fprintf(tw, "env:\t(none)\n")
	}
	for i, e := range cfg.Env {
		label := ""
		if i == 0 {
			label = "env:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, e)
	}
	tw.Flush()
}

// printLayers writes the LAYERS section, with dive's report when there is
// one.
func printLayers(w io.Writer, img *image.Image, rep *image.Report) {
	fmt.Fprintln(w)
	if rep != nil {
		fmt.Fprintf(w, "LAYERS (dive efficiency %.1f%%, wasted %s", 100*rep.Efficiency, humanBytes(rep.WastedBytes))
		if rep.UserBytes > 0 {
			fmt.Fprintf(w, ", %.1f%% of the layers above the base", rep.WastedPercent)
		}
		fmt.Fprintln(w, ")")
	} else {
		fmt.Fprintln(w, "LAYERS")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSIZE\tCONTENT\tFILES\tCOMMAND")
	for i, l := range img.Layers {
		content, files := "-", "-"
		if rep != nil && i < len(rep.Layers) {
			content, files = humanBytes(rep.Layers[i].ContentBytes), fmt.Sprint(rep.Layers[i].Files)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i, humanBytes(l.Size), content, files, shorten(orNone(l.CreatedBy), 70))
	}
	tw.Flush()
	if rep != nil && len(rep.Wasted) > 0 {
		fmt.Fprintln(w, "  wasted on paths in several layers:")
		for _, wst := range rep.Wasted {
			fmt.Fprintf(w, "    %s  %d copies  %s\n", wst.Path, wst.Copies, humanBytes(wst.Bytes))
		}
	}
}

// printClosure writes the CLOSURE section, and RULES and NOTES when the
// closure has any.
func printClosure(w io.Writer, res *image.ClosureResult) {
	_, total := res.Size()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "CLOSURE (%d files, %s, arch %s", len(res.Files), humanBytes(total), res.Arch)
	if len(res.Interpreters) > 0 {
		fmt.Fprintf(w, ", loader %s", strings.Join(res.Interpreters, " "))
	}
	fmt.Fprintln(w, ")")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PATH\tSIZE\tLAYER\tWHY")
	for _, f := range res.Files {
		p, size := f.Path, humanBytes(f.Size)
		if f.Kind == image.Symlink {
			p += " -> " + f.Target
			size = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", p, size, f.Layer, reasons(f.Why))
	}
	tw.Flush()
	if len(res.LibraryPath) > 0 {
		fmt.Fprintf(w, "library path: %s\n", strings.Join(res.LibraryPath, ":"))
	}
	for i, e := range res.Env {
		label := ""
		if i == 0 {
			label = "bundle env:"
		}
		fmt.Fprintf(w, "%-12s %s=%s%s (image paths, mapped into the bundle)\n", label, e.Name, e.Prefix, strings.Join(e.Paths, ":"))
	}
	if len(res.Rules) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "RULES (what each rule added; leave one out as shown)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tFILES\tSIZE\tMOSTLY IN\tLEAVE OUT WITH")
		for _, r := range res.Rules {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", r.Rule, r.Files, humanBytes(r.Size), r.Largest, r.Exclude)
		}
		tw.Flush()
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "NOTES")
		for _, n := range res.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// reasons renders a file's reasons, first first, briefly.
func reasons(why []image.Reason) string {
	var parts []string
	for i, r := range why {
		if i == 2 {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(why)-2))
			break
		}
		s := r.Kind
		switch r.Kind {
		case "needed":
			s = fmt.Sprintf("needed %s by %s", r.Detail, r.By)
		case "symlink":
			s = "link to " + r.By
		case "loader":
			s = "loader of " + r.By
		case "interpreter":
			s = fmt.Sprintf("interpreter of %s (%s)", r.By, r.Detail)
		case "runtime":
			s = fmt.Sprintf("%s (loaded by %s)", r.Detail, r.By)
		case "include":
			s = "--include " + r.Detail
		case "command":
			s = fmt.Sprintf("%s in script %s", r.Detail, r.By)
		case "script":
			s = fmt.Sprintf("script read by %s (%s)", r.By, r.Detail)
		case "module":
			s = fmt.Sprintf("%s (by %s)", r.Detail, r.By)
		case "library":
			s = r.Detail
		case "data":
			s = "data " + r.Detail
		case image.TracedReason:
			s = "seen at run time"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func jsonList(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// humanBytes renders a size in decimal units, as dive and docker do.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

package lambda

import (
	"fmt"
	"sort"
	"strings"

	"github.com/comingout/extract/pkg/image"
)

// Lambda's code size limits for a .zip deployment package.
const (
	// MaxUnzippedSize is the largest a function's code may be once
	// unpacked: 250 MB, counted in bytes as Lambda counts it.
	MaxUnzippedSize int64 = 262144000
	// MaxDirectUploadSize is the largest zip CreateFunction and
	// UpdateFunctionCode accept in the request itself (50 MB); larger zips
	// must go through an S3 object.
	MaxDirectUploadSize int64 = 50 << 20
)

// FileSize is one packaged file and its unzipped size.
type FileSize struct {
	// Path is the image path of the file ("/usr/lib/x86_64-linux-gnu/libc.so.6").
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// SizeError reports a package over Lambda's size limit. Biggest lists the
// largest files, biggest first, the candidates to leave out; Rule, when
// known, is the closure rule that added the most bytes.
type SizeError struct {
	Size    int64
	Limit   int64
	Biggest []FileSize
	// Image is set for a container-image package (limit MaxImageSize).
	Image bool
	// Rule is what the closure rule that added the most bytes added
	// (image.ClosureResult.Rules[0]), or nil.
	Rule *image.RuleSize
}

func (e *SizeError) Error() string {
	var b strings.Builder
	if e.Image {
		fmt.Fprintf(&b, "image package is %s, over Lambda's limit of %s (%d bytes) for container images",
			humanSize(e.Size), humanSize(e.Limit), e.Limit)
		return b.String()
	}
	fmt.Fprintf(&b, "package is %s unzipped, over Lambda's limit of %s (%d bytes)",
		humanSize(e.Size), humanSize(e.Limit), e.Limit)
	if len(e.Biggest) > 0 {
		b.WriteString("; the biggest files are")
		for i, f := range e.Biggest {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s (%s)", f.Path, humanSize(f.Size))
		}
	}
	if r := e.Rule; r != nil {
		fmt.Fprintf(&b, "; rule %s added the most (%s in %d files, mostly %s)", r.Rule, humanSize(r.Size), r.Files, r.Largest)
	}
	return b.String()
}

// LoaderError reports an ELF loader (PT_INTERP) that bundled files name but
// the closure lacks: the package could not start them.
type LoaderError struct {
	// Loader is the PT_INTERP path, Users the closure files that name it.
	Loader string
	Users  []string
}

func (e *LoaderError) Error() string {
	return fmt.Sprintf("loader %q of %q is not in the image's closure", e.Loader, e.Users)
}

// biggestFiles returns the n largest files, biggest first, ties by path.
func biggestFiles(files []FileSize, n int) []FileSize {
	s := append([]FileSize(nil), files...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].Size != s[j].Size {
			return s[i].Size > s[j].Size
		}
		return s[i].Path < s[j].Path
	})
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// checkUnzipped returns a *SizeError when size exceeds limit.
func checkUnzipped(size, limit int64, files []FileSize) error {
	if size <= limit {
		return nil
	}
	return &SizeError{Size: size, Limit: limit, Biggest: biggestFiles(files, 5)}
}

// zippedWarning returns the warning for a zip too big to upload directly
// (WarnDirectUpload), or false when it fits.
func zippedWarning(zipped, limit int64) (Warning, bool) {
	if zipped <= limit {
		return Warning{}, false
	}
	return Warning{Kind: WarnDirectUpload, Message: fmt.Sprintf("package is %s zipped, over the %s Lambda accepts in a direct upload: it must be uploaded through an S3 object",
		humanSize(zipped), humanSize(limit))}, true
}

// humanSize formats n bytes in binary units written the way Lambda's
// documentation writes them: its "250 MB" is 250 MiB (262144000 bytes).
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}

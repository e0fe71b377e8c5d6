package image

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressInterval is the least time between two progress lines of one
// download.
const progressInterval = time.Second

// progressf writes one progress line to w; w may be nil.
func progressf(w io.Writer, format string, args ...any) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, format+"\n", args...)
}

// progressReader reports how much of a download was read: a line at most
// every progressInterval, and one at the end.
type progressReader struct {
	r     io.ReadCloser
	w     io.Writer
	label string
	total int64
	read  int64
	start time.Time
	last  time.Time
	ended bool
}

func newProgressReader(r io.ReadCloser, w io.Writer, label string, total int64) *progressReader {
	now := time.Now()
	progressf(w, "%s: downloading %s", label, humanBytes(total))
	return &progressReader{r: r, w: w, label: label, total: total, start: now, last: now}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	now := time.Now()
	switch {
	case err == io.EOF && !p.ended:
		p.ended = true
		progressf(p.w, "%s: downloaded %s in %s", p.label, humanBytes(p.read), now.Sub(p.start).Round(time.Millisecond))
	case err == nil && now.Sub(p.last) >= progressInterval:
		p.last = now
		pct := ""
		if p.total > 0 {
			pct = fmt.Sprintf(" (%d%%)", p.read*100/p.total)
		}
		progressf(p.w, "%s: %s of %s%s", p.label, humanBytes(p.read), humanBytes(p.total), pct)
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }

// humanBytes formats n like "12.3 MB" (SI units, as registries show).
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

// shortDigest returns "sha256:" and the first 12 hex digits.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

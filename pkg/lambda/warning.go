package lambda

import (
	"encoding/json"
	"fmt"
)

// WarningKind says which problem a Warning reports, for a caller that
// advises on it; "" is a warning of no particular kind.
type WarningKind string

// The kinds of warnings the packagers give.
const (
	// WarnOriginalPaths: the zip moves image paths the program names by
	// their original path (PackageResult.PathRefs); a container-image
	// package keeps them where they are.
	WarnOriginalPaths WarningKind = "original-paths"
	// WarnDirectUpload: the zip is over MaxDirectUploadSize and must be
	// uploaded to Lambda through an S3 object.
	WarnDirectUpload WarningKind = "direct-upload"
	// WarnNotExecutable: the program of a whole image package is not
	// executable by others, and Lambda runs it as a user that owns no
	// file; a slim package (WithSlim) makes it so.
	WarnNotExecutable WarningKind = "not-executable"
	// WarnNotReadable: closure files of a whole image package are not
	// readable by others; a slim package makes them so.
	WarnNotReadable WarningKind = "not-readable"
)

// Warning is a problem that did not stop packaging: Message says what, in
// the package's terms, and Kind which problem it is. It encodes in JSON as
// its message.
type Warning struct {
	Kind    WarningKind
	Message string
}

func (w Warning) String() string { return w.Message }

// MarshalJSON encodes w as its message, a JSON string.
func (w Warning) MarshalJSON() ([]byte, error) { return json.Marshal(w.Message) }

// UnmarshalJSON decodes a warning MarshalJSON encoded: its message; the
// kind is not encoded.
func (w *Warning) UnmarshalJSON(b []byte) error {
	*w = Warning{}
	return json.Unmarshal(b, &w.Message)
}

// warn records a warning of no particular kind and logs it.
func (p *packer) warn(format string, args ...any) {
	p.warnKind("", format, args...)
}

// warnKind records a warning of kind and logs it.
func (p *packer) warnKind(kind WarningKind, format string, args ...any) {
	w := Warning{Kind: kind, Message: fmt.Sprintf(format, args...)}
	p.warnings = append(p.warnings, w)
	p.o.logger.Warn(w.Message)
}

package deploy

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/comingout/extract/pkg/lambda"
)

// TestWithWarnings: a packaging warning goes to WithWarnings's function,
// kind and all, and nowhere else; without it, its message is logged.
func TestWithWarnings(t *testing.T) {
	w := lambda.Warning{Kind: lambda.WarnOriginalPaths, Message: "2 image paths are moved"}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))

	var got []lambda.Warning
	o, err := makeDeployOptions([]Option{WithLogger(log), WithWarnings(func(w lambda.Warning) { got = append(got, w) })})
	if err != nil {
		t.Fatal(err)
	}
	o.warn(w)
	if len(got) != 1 || got[0] != w {
		t.Errorf("WithWarnings got %+v, want [%+v]", got, w)
	}
	if logged.Len() != 0 {
		t.Errorf("a warning handed to WithWarnings was logged too: %s", logged.String())
	}

	o, err = makeDeployOptions([]Option{WithLogger(log)})
	if err != nil {
		t.Fatal(err)
	}
	o.warn(w)
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), w.Message) {
		t.Errorf("without WithWarnings the log has %q, want the warning's message", logged.String())
	}
	if _, err := makeDeployOptions([]Option{WithWarnings(nil)}); err == nil {
		t.Error("WithWarnings(nil) accepted")
	}
}

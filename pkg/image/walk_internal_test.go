package image

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFollow: closer.follow resolves like Index.Resolve and reports every
// symlink it follows, directory symlinks included, in order; the root, a
// missing path, a path through a file and a loop are errors.
func TestFollow(t *testing.T) {
	_, idx := mustIndex(t, []tf{
		dir("usr/"), dir("usr/lib/"), dir("usr/lib/x/"),
		file("usr/lib/x/libc.so.6", "c"),
		symlink("lib", "usr/lib"),
		symlink("usr/lib/x/libc.so", "libc.so.6"),
		symlink("usr/lib/x/abs", "/lib/x/libc.so"),
		symlink("loop", "loop"),
	})
	c := &closer{idx: idx}
	tests := []struct {
		p         string
		want      string
		wantLinks []string
		wantErr   error
	}{
		{p: "/lib/x/libc.so", want: "/usr/lib/x/libc.so.6", wantLinks: []string{"/lib", "/usr/lib/x/libc.so"}},
		{p: "/usr/lib/x/abs", want: "/usr/lib/x/libc.so.6", wantLinks: []string{"/usr/lib/x/abs", "/lib", "/usr/lib/x/libc.so"}},
		// ".." after a directory symlink goes up from its target (/usr).
		{p: "/lib/../lib/x/libc.so.6", want: "/usr/lib/x/libc.so.6", wantLinks: []string{"/lib"}},
		{p: "/lib/x/libc.so.6/..", wantErr: fs.ErrNotExist},
		{p: "/lib/x/missing", wantErr: fs.ErrNotExist},
		{p: "/loop", wantErr: ErrSymlinkLoop},
	}
	for _, tt := range tests {
		e, links, err := c.follow(tt.p)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("follow(%q) error = %v, want %v", tt.p, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("follow(%q): %v", tt.p, err)
			continue
		}
		var got []string
		for _, l := range links {
			got = append(got, l.Path)
		}
		if e.Path != tt.want || !cmp.Equal(got, tt.wantLinks) {
			t.Errorf("follow(%q) = %s via %q, want %s via %q", tt.p, e.Path, got, tt.want, tt.wantLinks)
		}
	}
	if e, _, err := c.follow("/usr/.."); err == nil {
		t.Errorf("follow(/usr/..) = %s, want an error for the root directory", e.Path)
	}
}

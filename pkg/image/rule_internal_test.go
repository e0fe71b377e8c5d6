package image

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRuleRegistry: every closure gets the rules in their order, each
// fresh, and an interpreter goes to the first rule that interprets its
// name or its file's name, the generic interpreter rule last.
func TestRuleRegistry(t *testing.T) {
	var names []string
	for _, r := range newRules() {
		names = append(names, r.name())
	}
	want := []string{"elf", "scripts", "python", "perl", "interpreter", "data"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("newRules() (-want +got):\n%s", diff)
	}
	if a, b := newRules(), newRules(); a[1] == b[1] {
		t.Error("newRules() shares rule state between closures")
	}

	_, idx := mustIndex(t, []tf{
		dir("bin/"), file("bin/dash", "x"), symlink("bin/sh", "dash"),
		file("bin/python3.11", "x"), symlink("bin/py", "python3.11"),
		file("bin/perl", "x"), file("bin/ruby3.1", "x"),
	})
	c := &closer{idx: idx, rules: newRules(), log: slog.New(slog.DiscardHandler)}
	for p, want := range map[string]string{
		"/bin/sh": "scripts", "/bin/py": "python", "/bin/python3.11": "python",
		"/bin/perl": "perl", "/bin/ruby3.1": "interpreter",
	} {
		r, e := c.ruleFor(p)
		if r == nil || e == nil || r.name() != want {
			t.Errorf("ruleFor(%q) = %v, want the %s rule", p, r, want)
		}
	}
	if r, e := c.ruleFor("/bin/missing"); r != nil || e != nil {
		t.Errorf("ruleFor(/bin/missing) = %v, %v, want none", r, e)
	}
}

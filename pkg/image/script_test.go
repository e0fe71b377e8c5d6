package image

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScript(t *testing.T) {
	long := "#!/bin/" + strings.Repeat("x", 300)
	tests := []struct {
		in   string
		want *ScriptInfo
	}{
		{"#!/bin/sh\necho hi\n", &ScriptInfo{Interpreter: "/bin/sh"}},
		{"#! /usr/bin/env python3\n", &ScriptInfo{Interpreter: "/usr/bin/env", Arg: "python3"}},
		{"#!/usr/bin/env -S python3 -u  \n", &ScriptInfo{Interpreter: "/usr/bin/env", Arg: "-S python3 -u"}},
		{"#!\t/bin/bash\t-e\t\nrest", &ScriptInfo{Interpreter: "/bin/bash", Arg: "-e"}},
		{"#!/bin/sh", &ScriptInfo{Interpreter: "/bin/sh"}},
		{"#!/bin/sh\r\n", &ScriptInfo{Interpreter: "/bin/sh\r"}},
		{"#!/bin/sh -x" + strings.Repeat(" y", 200) + "\n", &ScriptInfo{Interpreter: "/bin/sh", Arg: ("-x" + strings.Repeat(" y", 200))[:256-len("#!/bin/sh ")]}},
		{"#!/bin/sh\x00junk\n", &ScriptInfo{Interpreter: "/bin/sh"}},
		{long, nil},
		{"#!\n", nil},
		{"#!   \n/bin/sh", nil},
		{"# comment", nil},
		{"\x7fELF", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, ok := ParseScript([]byte(tt.in))
		if ok != (tt.want != nil) {
			t.Errorf("ParseScript(%q) ok = %v, want %v", tt.in, ok, tt.want != nil)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseScript(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseScript(f *testing.F) {
	for _, s := range []string{"#!/bin/sh\n", "#! /usr/bin/env python3 -u\n", "#!\t\n", "#!" + strings.Repeat("a", 300), "#!/bin/sh\x00x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := ParseScript(b)
		if !ok {
			if s != nil {
				t.Errorf("ParseScript = %+v, false", s)
			}
			return
		}
		if s.Interpreter == "" || strings.ContainsAny(s.Interpreter, " \t\n\x00") {
			t.Errorf("Interpreter = %q", s.Interpreter)
		}
		if strings.ContainsAny(s.Arg, "\n\x00") || strings.Trim(s.Arg, " \t") != s.Arg {
			t.Errorf("Arg = %q", s.Arg)
		}
		if len(s.Interpreter)+len(s.Arg) > maxShebang {
			t.Errorf("line longer than %d bytes: %+v", maxShebang, s)
		}
	})
}

func ExampleParseScript() {
	s, ok := ParseScript([]byte("#!/usr/bin/env python3 -u\nprint('hi')\n"))
	fmt.Println(ok, s.Interpreter, s.Arg)
	// Output: true /usr/bin/env python3 -u
}

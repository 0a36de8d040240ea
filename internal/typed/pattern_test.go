package typed

import (
	"strings"
	"testing"
)

func TestCompilePatternReadsAsECMADoes(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{`^\u0041+$`, []string{"AAA"}, []string{"", "a"}},
		{`^[^\u0000-\u001F]*$`, []string{"tab-less text", "é"}, []string{"a\x01"}},
		{`^a.b$`, []string{"axb", "a\u00e9b"}, []string{"a\nb", "a\rb", "a\u2028b", "a\u2029b"}},
		{`^\s$`, []string{" ", "\t", "\u00a0", "\u3000", "\ufeff"}, []string{"x", ""}},
		{`^\S+$`, []string{"ab"}, []string{"a b", "a\u00a0b"}},
		{`^[\s,]+$`, []string{" ,\u2003"}, []string{"x"}},
		{`^(?:ab)+$`, []string{"abab"}, []string{"aba"}},
		{`^\d{2}-\w+$`, []string{"12-ab_c"}, []string{"1-a", "12-é"}},
	}
	for _, c := range cases {
		re, err := compilePattern(c.pattern)
		if err != nil {
			t.Errorf("compilePattern(%q): %v", c.pattern, err)
			continue
		}
		for _, s := range c.match {
			if !re.MatchString(s) {
				t.Errorf("%q does not match %q, which ECMA-262 matches", c.pattern, s)
			}
		}
		for _, s := range c.nomatch {
			if re.MatchString(s) {
				t.Errorf("%q matches %q, which ECMA-262 does not", c.pattern, s)
			}
		}
	}
}

func TestCompilePatternRefusesWhatTheDialectsReadDifferently(t *testing.T) {
	for _, p := range []string{`(?i)a`, `(?P<x>a)`, `\Aa`, `a\z`, `\pL`, `\P{L}`, `[[:alpha:]]`, `\x{41}`, `[\S]`, `[]a]`, `[^]a]`, `\Qa\E`, `a\`, `\u12`, `(?=a)`, `(a)\1`} {
		if _, err := compilePattern(p); err == nil {
			t.Errorf("compilePattern(%q) accepted", p)
		}
	}
}

// FuzzCompilePattern: any pattern either is refused or compiles; none
// panics, and a refusal says why.
func FuzzCompilePattern(f *testing.F) {
	for _, s := range []string{`^a.b$`, `[\s]`, `\u0041`, `(?:x)`, `[^]`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if _, err := compilePattern(p); err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("compilePattern(%q): an empty error", p)
		}
	})
}

package etag

import (
	"strings"
	"testing"
)

func TestNoneMatch(t *testing.T) {
	const current = `"w42"`
	cases := []struct {
		header string
		ok     bool
		tag    string
	}{
		{``, false, ``},
		{`*`, true, current},
		{` * `, true, current},
		{`"w42"`, true, `"w42"`},
		{`W/"w42"`, true, `"w42"`}, // weak comparison
		{`"w41", "w42"`, true, `"w42"`},
		{`"w41","w42"`, true, `"w42"`},
		{`"w42-gzip"`, true, `"w42-gzip"`}, // the compressed variant, echoed as held
		{`W/"w42-zstd"`, true, `"w42-zstd"`},
		{`"w42-br", "x"`, true, `"w42-br"`},
		{`"w41"`, false, ``},
		{`"w4"`, false, ``},
		{`"w420"`, false, ``},
		{`"w42-deflate"`, false, ``}, // not a coding hotpath appends
		{`w42`, false, ``},           // unquoted: malformed
		{`"w42`, false, ``},
		{`"x" "w42"`, false, ``}, // no comma: malformed, so nothing after it counts
		{`"a,b", "w42"`, true, `"w42"`},
	}
	for _, c := range cases {
		tag, ok := NoneMatch([]byte(c.header), []byte(current))
		if ok != c.ok || string(tag) != c.tag {
			t.Errorf("If-None-Match %q against %s: (%q, %v), want (%q, %v)", c.header, current, tag, ok, c.tag, c.ok)
		}
	}
}

func TestMatchIsStrong(t *testing.T) {
	const current = `"f7"`
	cases := []struct {
		header string
		ok     bool
	}{
		{`"f7"`, true},
		{`"f7-gzip"`, true},
		{`"f8", "f7"`, true},
		{`W/"f7"`, false}, // strong comparison: a weak tag never matches
		{`"f8"`, false},
		{`"f"`, false},
		{`*`, false}, // the wildcard is Any's business
		{``, false},
	}
	for _, c := range cases {
		if got := Match([]byte(c.header), []byte(current)); got != c.ok {
			t.Errorf("If-Match %q against %s: %v, want %v", c.header, current, got, c.ok)
		}
	}
}

func TestEachListsBaseOpaques(t *testing.T) {
	var got []string
	Each([]byte(` "w1", W/"w2-gzip" ,"w3-br",  "-gzip", "a-b"`), func(opaque []byte, weak bool) bool {
		s := string(opaque)
		if weak {
			s = "W/" + s
		}
		got = append(got, s)
		return true
	})
	if want := "w1 W/w2 w3 -gzip a-b"; strings.Join(got, " ") != want {
		t.Errorf("Each listed %q, want %q", strings.Join(got, " "), want)
	}
}

func TestWithCoding(t *testing.T) {
	for _, c := range []struct{ tag, coding, want string }{
		{`"w42"`, "gzip", `"w42-gzip"`},
		{`"p0af"`, "zstd", `"p0af-zstd"`},
		{`W/"w42"`, "br", `W/"w42"`},
		{`w42`, "br", `w42`},
		{``, "br", ``},
	} {
		if got := string(WithCoding(nil, []byte(c.tag), c.coding)); got != c.want {
			t.Errorf("WithCoding(%q, %s) = %q, want %q", c.tag, c.coding, got, c.want)
		}
		if c.want != c.tag && !Match([]byte(c.want), []byte(c.tag)) {
			t.Errorf("%s does not match its own compressed variant %s", c.tag, c.want)
		}
	}
}

func FuzzEach(f *testing.F) {
	for _, s := range []string{`"a"`, `W/"a", "b"`, `*`, `"`, `W/`, `"a"x`, `,,,"a-gzip"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		Each([]byte(header), func(opaque []byte, weak bool) bool {
			if strings.ContainsRune(string(opaque), '"') {
				t.Fatalf("header %q: opaque %q holds a quote", header, opaque)
			}
			return true
		})
		NoneMatch([]byte(header), []byte(`"x"`))
		Match([]byte(header), []byte(`"x"`))
	})
}

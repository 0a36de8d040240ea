package requestid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"abc", true}, {"a-b_c.d:e/f", true}, {strings.Repeat("x", 128), true},
		{"", false}, {strings.Repeat("x", 129), false}, {"a b", false}, {"a\r\nSet-Cookie: x=1", false},
		{"tab\t", false}, {"\x7f", false}, {"é", false}, {"\x00", false},
	}
	for _, tc := range cases {
		if got := Valid([]byte(tc.in)); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestGeneratedIDsAreUniqueAndValid(t *testing.T) {
	g1, err := NewGenerator()
	if err != nil {
		t.Fatal(err)
	}
	g2, err := NewGenerator()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 1000 {
		for _, g := range []*Generator{g1, g2} {
			id := string(g.Append(nil))
			if seen[id] || !Valid([]byte(id)) {
				t.Fatalf("id %q repeated or invalid", id)
			}
			seen[id] = true
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{"abc", "a\r\nb", "", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Valid(b) && (len(b) > MaxLen || strings.ContainsAny(string(b), " \r\n\t\x00")) {
			t.Fatalf("Valid accepted %q", b)
		}
	})
}

func TestAppendWritesCounterInHex(t *testing.T) {
	g, err := NewGenerator()
	if err != nil {
		t.Fatal(err)
	}
	g.next.Store(0xfe)
	prefix := string(g.prefix[:])
	for _, want := range []string{"ff", "100"} {
		if got := string(g.Append(nil)); got != prefix+"-"+want {
			t.Errorf("Append = %q, want %q", got, prefix+"-"+want)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	g, err := NewGenerator()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Append(buf[:0])
	}
}

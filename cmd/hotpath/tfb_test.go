package main

import (
	"errors"
	"strconv"
	"testing"
)

// FuzzQueryCount checks queryCount against the TechEmpower rule written
// plainly: a decimal number clamped to 1..500, anything else 1.
func FuzzQueryCount(f *testing.F) {
	for _, s := range []string{"", "1", "20", "500", "501", "0", "-5", "+5", "abc", "1e3", " 5", "5 ",
		"0000000000000000000000020", "99999999999999999999999999", "٣", "5\x00", "0x10"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := 1
		digits := len(b) > 0
		for _, c := range b {
			digits = digits && c >= '0' && c <= '9'
		}
		if digits {
			n, err := strconv.ParseUint(string(b), 10, 64)
			switch {
			case errors.Is(err, strconv.ErrRange):
				want = maxQueries
			case err != nil:
				t.Fatalf("ParseUint(%q): %v", b, err) // only digits: cannot happen
			default:
				want = int(max(1, min(n, maxQueries)))
			}
		}
		if got := queryCount(b); got != want {
			t.Fatalf("queryCount(%q) = %d, want %d", b, got, want)
		}
	})
}

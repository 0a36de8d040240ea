package typed

import (
	"strings"
	"testing"
)

// TestCheckNamesWhatDecodeWould: a value filled elsewhere (a form) is held
// to the same constraints, with the same paths and details.
func TestCheckNamesWhatDecodeWould(t *testing.T) {
	in := compile[order](t)
	long := "long"
	cases := []struct {
		v    order
		want string
	}{
		{order{Address: address{City: "Oslo"}, Lines: []line{{"a", 1}}}, ""},
		{order{Lines: []line{{"a", 0}}}, "address.city: must not be empty; lines[0].count: must be at least 1"},
		{order{Address: address{City: "x", Zip: "1"}, Lines: []line{}}, "address.zip: must match the pattern ^[0-9]{5}$; lines: must have at least 1 items"},
		{order{Address: address{City: "x"}, Labels: map[string]string{"b": long, "a": long}, Priority: "mid", Ref: &address{}}, "labels.a: must be at most 3 characters; labels.b: must be at most 3 characters; ref.city: must not be empty; priority: must be one of low, high"},
		{order{Address: address{City: "\xff"}}, "address.city: must be valid UTF-8"},
	}
	for _, c := range cases {
		var got []string
		for _, e := range in.Check(&c.v) {
			got = append(got, e.Field+": "+e.Detail)
		}
		if strings.Join(got, "; ") != c.want {
			t.Errorf("Check(%+v):\n got  %s\n want %s", c.v, strings.Join(got, "; "), c.want)
		}
	}
}

func TestCheckOfTodaysFortune(t *testing.T) {
	in := compile[newFortune](t)
	for m, want := range map[string]string{"hello": "", "": "must not be empty", "a\x07": "must match the pattern ^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$", strings.Repeat("é", 501): "must be at most 500 characters"} {
		errs := in.Check(&newFortune{Message: m})
		got := ""
		if len(errs) > 0 {
			got = errs[0].Detail
		}
		if got != want || len(errs) > 1 {
			t.Errorf("Check(%.20q): %v, want %q", m, errs, want)
		}
	}
}

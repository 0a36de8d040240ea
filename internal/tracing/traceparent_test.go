package tracing

import (
	"strings"
	"testing"
)

func TestParseTraceparentFollowsTheSpec(t *testing.T) {
	const (
		tid = "0af7651916cd43dd8448eb211c80319c"
		sid = "b7ad6b7169203331"
	)
	cases := []struct {
		name, in string
		ok       bool
		sampled  bool
	}{
		{"sampled", "00-" + tid + "-" + sid + "-01", true, true},
		{"not sampled", "00-" + tid + "-" + sid + "-00", true, false},
		{"unknown flags kept to sampled", "00-" + tid + "-" + sid + "-ff", true, true},
		{"later version, same length", "01-" + tid + "-" + sid + "-01", true, true},
		{"later version, more fields", "cc-" + tid + "-" + sid + "-01-what-the-future-holds", true, true},
		{"later version, no dash after flags", "cc-" + tid + "-" + sid + "-01x", false, false},
		{"version ff", "ff-" + tid + "-" + sid + "-01", false, false},
		{"version 00 with more fields", "00-" + tid + "-" + sid + "-01-extra", false, false},
		{"empty", "", false, false},
		{"short trace id", "00-" + tid[1:] + "-" + sid + "-01", false, false},
		{"long trace id", "00-" + tid + "0-" + sid + "-01", false, false},
		{"short parent id", "00-" + tid + "-" + sid[1:] + "-01", false, false},
		{"short flags", "00-" + tid + "-" + sid + "-1", false, false},
		{"all-zero trace id", "00-" + strings.Repeat("0", 32) + "-" + sid + "-01", false, false},
		{"all-zero parent id", "00-" + tid + "-" + strings.Repeat("0", 16) + "-01", false, false},
		{"upper-case trace id", "00-" + strings.ToUpper(tid) + "-" + sid + "-01", false, false},
		{"upper-case version", "0A-" + tid + "-" + sid + "-01", false, false},
		{"upper-case flags", "00-" + tid + "-" + sid + "-0A", false, false},
		{"not hex", "00-" + tid[:31] + "g-" + sid + "-01", false, false},
		{"wrong separator", "00_" + tid + "-" + sid + "-01", false, false},
		{"padded inside", "00- " + tid[1:] + "-" + sid + "-01", false, false},
	}
	for _, tc := range cases {
		p, ok := parseTraceparent([]byte(tc.in))
		if ok != tc.ok || (ok && p.flags.IsSampled() != tc.sampled) {
			t.Errorf("%s: parse %q = ok %v sampled %v, want ok %v sampled %v", tc.name, tc.in, ok, p.flags.IsSampled(), tc.ok, tc.sampled)
			continue
		}
		if ok && (p.traceID.String() != tid || p.spanID.String() != sid) {
			t.Errorf("%s: ids %s %s, want %s %s", tc.name, p.traceID, p.spanID, tid, sid)
		}
		if ok {
			var b [traceparentLen]byte
			want := "00-" + tid + "-" + sid + map[bool]string{true: "-01", false: "-00"}[tc.sampled]
			if got := string(appendTraceparent(b[:0], p.traceID, p.spanID, p.flags)); got != want {
				t.Errorf("%s: passed on as %q, want %q", tc.name, got, want)
			}
		}
	}
}

func TestTracestateIsPassedOnOnlyWhenWellFormed(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"vendor=abc", true},
		{"a=1, b=2 ,,c=3", true},
		{"tenant@system=x", true},
		{"novalue", false},
		{"=nokey", false},
		{"a=1,b", false},
		{"a=caf\xc3\xa9", false},
		{"a=1\x00", false},
		{strings.Repeat("k=v,", 32) + "k=v", false},
		{"k=" + strings.Repeat("v", maxTracestate), false},
	}
	for _, tc := range cases {
		if got := validTracestate([]byte(tc.in)); got != tc.ok {
			t.Errorf("validTracestate(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	f.Add("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x")
	f.Fuzz(func(t *testing.T, in string) {
		p, ok := parseTraceparent([]byte(in))
		if !ok {
			return
		}
		// Whatever is accepted goes out as a valid version 00 value that
		// parses back to the same ids.
		var b [traceparentLen]byte
		out := appendTraceparent(b[:0], p.traceID, p.spanID, p.flags)
		q, ok := parseTraceparent(out)
		if !ok || q != p || in[:2] == "ff" {
			t.Errorf("parse %q = %+v, passed on as %q, which parses to %+v %v", in, p, out, q, ok)
		}
	})
}

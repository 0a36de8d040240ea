package metrics

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// familyName is what Prometheus accepts as a metric name.
var familyName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// TestHelpTextsAreWellFormed: each text is one line the text format needs no
// escape for, says something, and names the unit its family's name carries.
func TestHelpTextsAreWellFormed(t *testing.T) {
	units := map[string]string{"_seconds": "seconds", "_bytes": "bytes"}
	for name, text := range help {
		if !familyName.MatchString(name) {
			t.Errorf("help key %q is not a metric name", name)
		}
		if len(strings.Fields(text)) < 3 {
			t.Errorf("%s: help %q says too little: say what it counts, with its unit", name, text)
		}
		if strings.ContainsAny(text, "\\\n") {
			t.Errorf("%s: help %q holds a backslash or a line break", name, text)
		}
		for suffix, unit := range units {
			if strings.HasSuffix(strings.TrimSuffix(name, "_total"), suffix) && !strings.Contains(strings.ToLower(text), unit) {
				t.Errorf("%s: help %q does not name its unit, %s", name, text, unit)
			}
		}
	}
}

func TestWriteWithHelpFillsOnlyEmptyHelpLines(t *testing.T) {
	in := "# HELP http_requests_in_flight\n" +
		"# TYPE http_requests_in_flight gauge\n" +
		"http_requests_in_flight 3\n" +
		"# HELP no_such_family\n" +
		"# HELP http_requests_total already written\n" +
		`http_requests_total{route="/x",method="GET",code="200"} 1` + "\n"
	want := "# HELP http_requests_in_flight " + help["http_requests_in_flight"] + "\n" +
		"# TYPE http_requests_in_flight gauge\n" +
		"http_requests_in_flight 3\n" +
		"# HELP no_such_family\n" +
		"# HELP http_requests_total already written\n" +
		`http_requests_total{route="/x",method="GET",code="200"} 1` + "\n"
	var out bytes.Buffer
	if err := writeWithHelp(&out, []byte(in), nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("writeWithHelp:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestRegistryFamiliesHaveHelp covers the families this package registers
// itself, with every lazily made series present; cmd/hotpath's
// TestEveryMetricFamilyHasHelp covers the whole server.
func TestRegistryFamiliesHaveHelp(t *testing.T) {
	r := New("test")
	r.Route("GET", "/x").Observe(200, time.Millisecond)
	r.Refused(505)
	var out bytes.Buffer
	if err := r.WritePrometheus(&out); err != nil {
		t.Fatal(err)
	}
	helps := 0
	for _, line := range strings.Split(out.String(), "\n") {
		rest, ok := strings.CutPrefix(line, "# HELP ")
		if !ok {
			continue
		}
		helps++
		if name, text, _ := strings.Cut(rest, " "); text == "" {
			t.Errorf("family %s has no HELP text: add one to internal/metrics/help.go", name)
		}
	}
	if helps < 10 {
		t.Errorf("only %d HELP lines in:\n%s", helps, out.String())
	}
}

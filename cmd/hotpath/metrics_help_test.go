package main

import (
	"os"
	"strings"
	"testing"
)

// everyComponent reads the flags that turn on every optional part of the
// server that registers metric families (webhooks, an upstream, the
// adaptive in-flight cap, ...): testdata/every_component.args, which
// k8s/check reads too.
func everyComponent(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("testdata/every_component.args")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			args = append(args, line)
		}
	}
	return args
}

// TestEveryMetricFamilyHasHelp scrapes a live server with every optional
// component on: each family on /metrics must have a HELP text.
func TestEveryMetricFamilyHasHelp(t *testing.T) {
	p := startProc(t, everyComponent(t)...)
	defer p.stop(t)
	get(t, "GET", p.app+"/plaintext")
	_, body := get(t, "GET", p.admin+"/metrics")
	fams := scrapeFamilies(t, body)
	for _, want := range []string{"http_requests_total", "http_inflight_limit", "upstream_requests_total", "webhook_outbox_backlog", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[want]; !ok {
			t.Errorf("/metrics lacks %s: an optional component is not on", want)
		}
	}
	for name, f := range fams {
		if f.help == "" {
			t.Errorf("metric family %s has no HELP text: add one to internal/metrics/help.go", name)
		}
	}
}

// family is what /metrics says about one metric family.
type family struct {
	typ, help string
}

// scrapeFamilies reads a Prometheus text exposition into its families. A
// sample line belongs to the family of its name, or, for _bucket, _sum and
// _count, of a histogram or summary family; a sample of no declared family
// fails the test.
func scrapeFamilies(t *testing.T, body string) map[string]*family {
	t.Helper()
	fams := map[string]*family{}
	fam := func(name string) *family {
		if fams[name] == nil {
			fams[name] = &family{}
		}
		return fams[name]
	}
	var samples []string
	for _, line := range strings.Split(body, "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "# HELP "):
			name, text, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			fam(name).help = text
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			fam(name).typ = typ
		case strings.HasPrefix(line, "#"):
		default:
			samples = append(samples, line)
		}
	}
	for _, s := range samples {
		name, _, _ := strings.Cut(s, " ")
		name, _, _ = strings.Cut(name, "{")
		_, found := fams[name]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := fams[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && (f.typ == "histogram" || f.typ == "summary") {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics sample %q belongs to no family with HELP and TYPE lines", s)
		}
	}
	return fams
}

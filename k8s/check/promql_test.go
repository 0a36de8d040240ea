package check

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// everyComponentArgs turns on every optional part of the server that
// registers metric families; the server module's metric-help test reads it
// too.
const everyComponentArgs = "../../cmd/hotpath/testdata/every_component.args"

// promql parses expressions as Prometheus does, with its default functions.
var promql = parser.NewParser(parser.Options{})

// targetLabels are what Prometheus attaches to every series it scrapes
// through a ServiceMonitor (and, namespace and pod, through the annotation
// job the autoscaler's adapter assumes).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// metricSet is what PromQL in the manifests may select: the families a live
// hotpath exports, and the series the PrometheusRule records.
type metricSet struct {
	families map[string]*dto.MetricFamily
	recorded map[string][]string // record name -> the labels its expression keeps
}

// parseExposition reads a Prometheus text exposition with Prometheus's own
// parser.
func parseExposition(t *testing.T, r io.Reader) *metricSet {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return &metricSet{families: fams, recorded: map[string][]string{}}
}

// liveMetrics caches what liveExport scraped: every test asks the same.
var liveMetrics *metricSet

// liveExport runs the real binary with the dev overlay's environment and
// every optional component on (webhooks, an upstream, the adaptive cap,
// tracing: everyComponentArgs), and reads its /metrics. Not a hand list: a
// metric the server stops exporting fails the dashboard and rule checks.
func liveExport(t *testing.T) *metricSet {
	t.Helper()
	if liveMetrics != nil {
		return liveMetrics.clone()
	}
	c := render(t, overlays[1]).container(t)
	bin := buildServer(t)
	dir := t.TempDir()
	config, err := filepath.Abs(rootConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	appAddr, adminAddr := freeAddr(t), freeAddr(t)
	args := append([]string{"-config", config, "--server.addr=" + appAddr, "--admin.addr=" + adminAddr},
		readArgs(t, everyComponentArgs)...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(podEnv(t, c.Env, dir), "PATH="+os.Getenv("PATH"))
	cmd.Dir = dir
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	defer func() {
		_ = cmd.Process.Kill() // only its /metrics was wanted
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	}()
	admin := "http://" + adminAddr
	if !eventually(probeWindow(c.StartupProbe), func() bool { return get(admin+c.StartupProbe.HTTPGet.Path) == http.StatusOK }) {
		t.Fatalf("the server with %v did not start", args)
	}
	if code := get("http://" + appAddr + "/plaintext"); code != http.StatusOK {
		t.Fatalf("GET /plaintext = %d, want 200", code)
	}
	resp, err := probeClient.Get(admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	liveMetrics = parseExposition(t, resp.Body)
	return liveMetrics.clone()
}

// clone copies the set so a caller may add recorded series to it.
func (m *metricSet) clone() *metricSet {
	c := &metricSet{families: m.families, recorded: map[string][]string{}}
	for k, v := range m.recorded {
		c.recorded[k] = v
	}
	return c
}

// readArgs reads one command-line argument a line, skipping blank lines and
// # comments.
func readArgs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			args = append(args, line)
		}
	}
	if len(args) == 0 {
		t.Fatalf("%s holds no arguments", path)
	}
	return args
}

// series is what a selector of one metric name can match: its label names
// and, for an exported family, the label sets of its live series.
type series struct {
	labels map[string]bool
	sets   []map[string]string // nil for a recorded series: its values are not known offline
}

// lookup resolves a metric name as a selector uses it: a family, a
// histogram's or summary's _bucket, _sum or _count series, or a recorded
// series.
func (m *metricSet) lookup(name string) (series, bool) {
	s := series{labels: map[string]bool{}}
	fam, extra := m.family(name)
	if fam == nil {
		keep, ok := m.recorded[name]
		for _, l := range keep {
			s.labels[l] = true
		}
		return s, ok
	}
	if extra != "" {
		s.labels[extra] = true
	}
	for _, metric := range fam.GetMetric() {
		set := map[string]string{}
		for _, lp := range metric.GetLabel() {
			s.labels[lp.GetName()] = true
			set[lp.GetName()] = lp.GetValue()
		}
		s.sets = append(s.sets, set)
	}
	return s, true
}

// family finds the exported family a series name belongs to, and the label
// the name adds to the family's own (le of a histogram's buckets, quantile
// of a summary).
func (m *metricSet) family(name string) (*dto.MetricFamily, string) {
	if f, ok := m.families[name]; ok {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			return nil, "" // a classic histogram has no series of its family's own name
		case dto.MetricType_SUMMARY:
			return f, "quantile"
		}
		return f, ""
	}
	for suffix, extra := range map[string]string{"_bucket": "le", "_sum": "", "_count": ""} {
		base, ok := strings.CutSuffix(name, suffix)
		f := m.families[base]
		if !ok || f == nil {
			continue
		}
		if f.GetType() == dto.MetricType_HISTOGRAM || (f.GetType() == dto.MetricType_SUMMARY && suffix != "_bucket") {
			return f, extra
		}
	}
	return nil, ""
}

// selectors returns every vector selector in a parsed expression.
func selectors(node parser.Node) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// check parses expr and reports each thing in it that would make it select
// nothing from hotpath: a metric the server does not export, a label none
// of its series carries, a matcher no live series satisfies, grouping by a
// label none of its metrics has. Matcher values holding a dashboard
// variable ($job) are not compared with live series.
func (m *metricSet) check(expr string) (parser.Expr, []string) {
	node, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, []string{fmt.Sprintf("does not parse: %v", err)}
	}
	var problems []string
	known := map[string]bool{}
	for _, l := range targetLabels {
		known[l] = true
	}
	for _, vs := range selectors(node) {
		name := vs.Name
		if name == "" {
			problems = append(problems, fmt.Sprintf("%s selects no metric by name", vs))
			continue
		}
		s, ok := m.lookup(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %s is not exported by hotpath (not on the /metrics of the server run with %s) nor recorded by the rules", name, everyComponentArgs))
			continue
		}
		for l := range s.labels {
			known[l] = true
		}
		for _, lm := range vs.LabelMatchers {
			switch {
			case lm.Name == model.MetricNameLabel || slices.Contains(targetLabels, lm.Name):
			case !s.labels[lm.Name]:
				problems = append(problems, fmt.Sprintf("%s: metric %s has no label %s", vs, name, lm.Name))
			case s.sets != nil && !strings.Contains(lm.Value, "$") && !slices.ContainsFunc(s.sets, func(set map[string]string) bool { return lm.Matches(set[lm.Name]) }):
				problems = append(problems, fmt.Sprintf("%s: no series of %s matches %s", vs, name, lm))
			}
		}
	}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		var used []string
		switch n := n.(type) {
		case *parser.AggregateExpr:
			used = n.Grouping
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				used = append(slices.Clone(n.VectorMatching.MatchingLabels), n.VectorMatching.Include...)
			}
		}
		for _, l := range used {
			if !known[l] {
				problems = append(problems, fmt.Sprintf("groups or matches on label %s, which none of its metrics carries", l))
			}
		}
		return nil
	})
	return node, problems
}

// record adds a recording rule's series, with the labels its expression
// keeps (those of its outermost by clauses).
func (m *metricSet) record(name string, node parser.Expr) {
	var keep []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if a, ok := n.(*parser.AggregateExpr); ok && !a.Without {
			for _, l := range a.Grouping {
				if !slices.Contains(keep, l) {
					keep = append(keep, l)
				}
			}
		}
		return nil
	})
	m.recorded[name] = keep
}

// exposition is a small /metrics of the shape hotpath writes, for testing
// the checker itself.
const exposition = `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{route="/json",method="GET",code="200"} 3
http_requests_total{route="/db",method="GET",code="503"} 1
# HELP http_request_duration_seconds Time.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/json",method="GET",le="0.001"} 3
http_request_duration_seconds_bucket{route="/json",method="GET",le="+Inf"} 3
http_request_duration_seconds_sum{route="/json",method="GET"} 0.001
http_request_duration_seconds_count{route="/json",method="GET"} 3
`

// TestPromQLCheckFindsMistakes: the checker that guards the dashboard and
// the rules accepts what hotpath exports and names each kind of mistake.
func TestPromQLCheckFindsMistakes(t *testing.T) {
	m := parseExposition(t, strings.NewReader(exposition))
	rec, problems := m.check(`sum by (namespace, job) (rate(http_requests_total[5m]))`)
	if len(problems) != 0 {
		t.Fatalf("recording expression: %v", problems)
	}
	m.record("namespace_job:requests:rate5m", rec)
	for _, tc := range []struct {
		expr string
		want string // "" when the expression is right
	}{
		{`sum by (route, code) (rate(http_requests_total{job="$job", pod=~"$pod", code=~"5.."}[5m]))`, ""},
		{`histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{route!="unmatched"}[5m])))`, ""},
		{`rate(http_request_duration_seconds_count{route="/json"}[5m]) / rate(http_request_duration_seconds_sum[5m])`, ""},
		{`namespace_job:requests:rate5m{namespace="hotpath"} > 1`, ""},
		{`rate(http_request_total[5m])`, "metric http_request_total is not exported"},
		{`rate(http_requests_total{path="/json"}[5m])`, "has no label path"},
		{`rate(http_requests_total{code="418"}[5m])`, `no series of http_requests_total matches code="418"`},
		{`rate(http_requests_total{route=~"/api/.*"}[5m])`, "no series of http_requests_total matches"},
		{`sum by (handler) (rate(http_requests_total[5m]))`, "label handler"},
		{`histogram_quantile(0.99, rate(http_request_duration_seconds[5m]))`, "metric http_request_duration_seconds is not exported"},
		{`rate(http_request_duration_seconds_count{le="1"}[5m])`, "has no label le"},
		{`sum by (route) (namespace_job:requests:rate5m)`, "label route"},
		{`sum(rate(http_requests_total[5m])`, "does not parse"},
		{`{route="/json"}`, "selects no metric by name"},
	} {
		_, problems := m.check(tc.expr)
		got := strings.Join(problems, "; ")
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("check(%s) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

package check

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	// monitoringJob is the job label of hotpath's series when the
	// ServiceMonitor scrapes them; the rules select on it.
	monitoringJob = "hotpath"
	// metricsPath is where the admin listener serves /metrics.
	metricsPath = "/metrics"
	// runbooksPath holds a runbook section for every alert.
	runbooksPath = "../README.md"
)

// monitored returns the overlays that carry the monitoring component.
func monitored(t *testing.T) []*bundle {
	t.Helper()
	var out []*bundle
	for _, o := range overlays {
		if o.monitoring {
			out = append(out, render(t, o))
		}
	}
	if len(out) == 0 {
		t.Fatal("no overlay in the checks carries the monitoring component")
	}
	return out
}

// eachMonitored runs check on every overlay with the monitoring component.
func eachMonitored(t *testing.T, check func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, b := range monitored(t) {
		t.Run(b.name(), func(t *testing.T) { check(t, b) })
	}
}

// TestMonitoringObjectsOnlyWithComponent: the base and the plain overlays
// hold no Prometheus Operator object, so clusters without its CRDs can
// apply them; the component brings one of each.
func TestMonitoringObjectsOnlyWithComponent(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		want := 0
		if b.monitoring {
			want = 1
		}
		if len(b.serviceMonitors) != want || len(b.rules) != want {
			t.Errorf("%d ServiceMonitors and %d PrometheusRules, want %d of each", len(b.serviceMonitors), len(b.rules), want)
		}
	})
}

// TestServiceMonitorScrapesAdminPort follows the ServiceMonitor to the
// pods: it selects the metrics Service in its own namespace, that Service
// selects the pods and maps the endpoint's port to the container's admin
// port, the NetworkPolicy lets the monitoring namespace's Prometheus in,
// and the series get the job label the rules select on.
func TestServiceMonitorScrapesAdminPort(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	eachMonitored(t, func(t *testing.T, b *bundle) {
		sm := only(t, b, "ServiceMonitor", b.serviceMonitors)
		if sm.Namespace != b.namespace {
			t.Errorf("ServiceMonitor in namespace %q, want %q", sm.Namespace, b.namespace)
		}
		if ns := sm.Spec.NamespaceSelector; ns.Any || (len(ns.MatchNames) > 0 && !slices.Equal(ns.MatchNames, []string{b.namespace})) {
			t.Errorf("namespaceSelector %+v: want the ServiceMonitor's own namespace", ns)
		}
		var svcs []*corev1.Service
		for _, s := range b.services {
			if s.Namespace == sm.Namespace && selects(t, &sm.Spec.Selector, k8slabels.Set(s.Labels)) {
				svcs = append(svcs, s)
			}
		}
		svc := only(t, b, "Service selected by the ServiceMonitor", svcs)
		pods := k8slabels.Set(b.deployment(t).Spec.Template.Labels)
		if len(svc.Spec.Selector) == 0 || !k8slabels.SelectorFromSet(svc.Spec.Selector).Matches(pods) {
			t.Errorf("Service %s selector %v does not select the pods %v", svc.Name, svc.Spec.Selector, pods)
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s has clusterIP %q: want a headless Service, so nothing balances across the pods' admin ports", svc.Name, svc.Spec.ClusterIP)
		}
		if job := svc.Labels[sm.Spec.JobLabel]; sm.Spec.JobLabel == "" || job != monitoringJob {
			t.Errorf("jobLabel %q gives job %q, want %q: the rules select job=%q", sm.Spec.JobLabel, job, monitoringJob, monitoringJob)
		}
		admin := cfg.port(t, b.container(t).Env, "admin")
		if got := b.port(t, intstr.FromString("admin")); got != admin {
			t.Fatalf("container port admin = %d, want admin.addr's port %d", got, admin)
		}
		np := only(t, b, "NetworkPolicy", b.netpols)
		prometheus := client{"monitoring", k8slabels.Set{"app.kubernetes.io/name": "prometheus"}}
		if len(sm.Spec.Endpoints) == 0 {
			t.Fatal("ServiceMonitor has no endpoints")
		}
		for _, ep := range sm.Spec.Endpoints {
			var target int32
			for _, p := range svc.Spec.Ports {
				if p.Name == ep.Port {
					target = b.port(t, p.TargetPort)
				}
			}
			if target != admin {
				t.Errorf("endpoint port %q reaches container port %d through Service %s, want the admin port %d", ep.Port, target, svc.Name, admin)
			}
			if ep.Path != metricsPath {
				t.Errorf("endpoint path %q, want %s", ep.Path, metricsPath)
			}
			interval, err := model.ParseDuration(string(ep.Interval))
			if err != nil {
				t.Errorf("endpoint interval %q: %v", ep.Interval, err)
			} else if timeout, err := model.ParseDuration(string(ep.ScrapeTimeout)); err != nil || timeout >= interval {
				t.Errorf("scrapeTimeout %q: want a duration below the interval %s (%v)", ep.ScrapeTimeout, ep.Interval, err)
			}
			if !b.admits(t, np, prometheus, admin) {
				t.Errorf("NetworkPolicy %s does not admit Prometheus pods in the monitoring namespace to port %d", np.Name, admin)
			}
		}
		if a := b.deployment(t).Spec.Template.Annotations["prometheus.io/scrape"]; a != "false" {
			t.Errorf("pod annotation prometheus.io/scrape = %q with a ServiceMonitor: want \"false\", or a Prometheus that follows annotations scrapes every pod twice", a)
		}
	})
}

// requiredAlerts are the alerts the service is run by.
var requiredAlerts = []string{
	"HotpathErrorBudgetFastBurn", "HotpathErrorBudgetSlowBurn", "HotpathLatencyP99High",
	"HotpathOverloadShedding", "HotpathWebhookBacklogGrowing", "HotpathUpstreamBreakerOpen",
	"HotpathConfigReloadFailed", "HotpathConfigDiverged",
}

// TestAlertRules: the PrometheusRule's groups pass rulefmt (as promtool
// check rules would), every expression selects metrics hotpath exports or
// the group records, on job="hotpath", and every alert has a severity, a
// summary, a description and a runbook line pointing at its section in
// k8s/README.md.
func TestAlertRules(t *testing.T) {
	exported := liveExport(t)
	readme, err := os.ReadFile(runbooksPath)
	if err != nil {
		t.Fatal(err)
	}
	eachMonitored(t, func(t *testing.T, b *bundle) {
		pr := only(t, b, "PrometheusRule", b.rules)
		if pr.Namespace != b.namespace {
			t.Errorf("PrometheusRule in namespace %q, want %q", pr.Namespace, b.namespace)
		}
		spec, err := yaml.Marshal(pr.Spec)
		if err != nil {
			t.Fatal(err)
		}
		groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promql, promslog.NewNopLogger())
		for _, err := range errs {
			t.Errorf("rulefmt: %v", err)
		}
		if groups == nil {
			t.FailNow()
		}
		m := exported.clone()
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record == "" {
					continue
				}
				node, problems := m.check(r.Expr)
				for _, p := range problems {
					t.Errorf("record %s: %s", r.Record, p)
				}
				onJob(t, "record "+r.Record, node, m)
				if node != nil {
					m.record(r.Record, node)
				}
			}
		}
		var alerts []string
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts = append(alerts, r.Alert)
				node, problems := m.check(r.Expr)
				for _, p := range problems {
					t.Errorf("alert %s: %s", r.Alert, p)
				}
				onJob(t, "alert "+r.Alert, node, m)
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("alert %s: severity %q, want critical (pages) or warning", r.Alert, s)
				}
				for _, a := range []string{"summary", "description", "runbook"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("alert %s has no %s annotation", r.Alert, a)
					}
				}
				if rb := r.Annotations["runbook"]; strings.Contains(rb, "\n") || !strings.Contains(rb, "k8s/README.md, "+r.Alert) {
					t.Errorf("alert %s: runbook %q: want one line ending in the pointer \"k8s/README.md, %s\"", r.Alert, rb, r.Alert)
				}
				if !regexp.MustCompile(`(?m)^#{2,6} ` + r.Alert + `$`).Match(readme) {
					t.Errorf("alert %s has no runbook section (a heading \"#### %s\") in %s", r.Alert, r.Alert, runbooksPath)
				}
			}
		}
		for _, want := range requiredAlerts {
			if !slices.Contains(alerts, want) {
				t.Errorf("no alert %s", want)
			}
		}
	})
}

// onJob fails the test for a selector of an exported metric without
// job="hotpath": the alert would judge another service's series with the
// same name.
func onJob(t *testing.T, what string, node parser.Expr, m *metricSet) {
	t.Helper()
	if node == nil {
		return
	}
	for _, vs := range selectors(node) {
		if _, recorded := m.recorded[vs.Name]; recorded {
			continue
		}
		if !hasMatcher(vs, labels.MatchEqual, "job", monitoringJob) {
			t.Errorf("%s: %s does not select job=%q", what, vs, monitoringJob)
		}
	}
}

func hasMatcher(vs *parser.VectorSelector, typ labels.MatchType, name, value string) bool {
	return slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool {
		return m.Type == typ && m.Name == name && m.Value == value
	})
}

// grafanaDashboard is the part of Grafana's dashboard JSON model the checks
// read.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// dashboardFamilies are what the dashboard must show: traffic, latency,
// in-flight and the adaptive limit, shedding, refusals, access-log drops,
// webhook backlog, breaker state and Go memory against GOMEMLIMIT.
var dashboardFamilies = []string{
	"http_requests_total", "http_request_duration_seconds_bucket", "http_requests_in_flight", "http_inflight_limit",
	"http_overload_rejections_total", "http_refused_total", "access_log_dropped_total", "webhook_outbox_backlog",
	"upstream_breaker_state", "go_gomemlimit_bytes",
}

// grafanaBuiltins are the range variables Grafana fills in itself.
var grafanaBuiltins = []string{"__rate_interval", "__interval", "__range"}

// dashboardVariable finds $name and ${name} in a query.
var dashboardVariable = regexp.MustCompile(`\$\{?(\w+)\}?`)

// TestDashboard: the Grafana dashboard ships as a ConfigMap the dashboard
// sidecar loads, every query parses and selects metrics hotpath exports
// through the dashboard's job, namespace and pod variables, and it shows
// every part of the service the runbooks refer to.
func TestDashboard(t *testing.T) {
	exported := liveExport(t)
	eachMonitored(t, func(t *testing.T, b *bundle) {
		cm := named(t, b, "ConfigMap", b.configMaps, func(c *corev1.ConfigMap) string { return c.Name }, "hotpath-dashboard")
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s lacks the label grafana_dashboard=\"1\" the Grafana sidecar looks for", cm.Name)
		}
		if len(cm.Data) != 1 {
			t.Fatalf("ConfigMap %s holds %d files, want the dashboard alone", cm.Name, len(cm.Data))
		}
		var d grafanaDashboard
		for file, raw := range cm.Data {
			dec := json.NewDecoder(strings.NewReader(raw))
			if err := dec.Decode(&d); err != nil || !strings.HasSuffix(file, ".json") {
				t.Fatalf("%s in ConfigMap %s: want a dashboard .json file (%v)", file, cm.Name, err)
			}
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("dashboard uid %q title %q: want both, the sidecar keys dashboards by uid", d.UID, d.Title)
		}

		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
			switch v.Type {
			case "datasource":
				if v.Query != "prometheus" {
					t.Errorf("variable %s: datasource query %v, want prometheus", v.Name, v.Query)
				}
			case "query":
				if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
					t.Errorf("variable %s does not query the dashboard's ${datasource}", v.Name)
				}
				sel, label, ok := labelValues(v.Definition)
				if !ok {
					t.Errorf("variable %s: definition %q, want label_values(selector, label)", v.Name, v.Definition)
					continue
				}
				node, problems := exported.check(sel)
				for _, p := range problems {
					t.Errorf("variable %s: %s", v.Name, p)
				}
				if s, ok := exported.lookup(metricName(node)); ok && !s.labels[label] && !slices.Contains(targetLabels, label) {
					t.Errorf("variable %s: %s has no label %s", v.Name, sel, label)
				}
			default:
				t.Errorf("variable %s of type %s: the check knows datasource and query variables", v.Name, v.Type)
			}
		}
		for _, want := range []string{"datasource", "job", "namespace", "pod"} {
			if !vars[want] {
				t.Errorf("dashboard has no variable %s", want)
			}
		}

		shown := map[string]bool{}
		quantiles := map[string]bool{}
		panels := 0
		for _, p := range flatten(d.Panels) {
			if p.Type == "row" {
				continue
			}
			panels++
			what := fmt.Sprintf("panel %q", p.Title)
			if p.Title == "" || p.Description == "" {
				t.Errorf("%s: want a title and a description", what)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s does not use the ${datasource} variable", what)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s has no queries", what)
			}
			for _, target := range p.Targets {
				expr := target.Expr
				for _, ref := range dashboardVariable.FindAllStringSubmatch(expr, -1) {
					if !vars[ref[1]] && !slices.Contains(grafanaBuiltins, ref[1]) {
						t.Errorf("%s: %s uses the undefined variable %s", what, expr, ref[0])
					}
				}
				for _, v := range grafanaBuiltins {
					expr = strings.NewReplacer("${"+v+"}", "5m", "$"+v, "5m").Replace(expr)
				}
				node, problems := exported.check(expr)
				for _, p := range problems {
					t.Errorf("%s: %s", what, p)
				}
				if node == nil {
					continue
				}
				for _, vs := range selectors(node) {
					shown[vs.Name] = true
					if !hasMatcher(vs, labels.MatchEqual, "job", "$job") || !hasMatcher(vs, labels.MatchEqual, "namespace", "$namespace") ||
						!hasMatcher(vs, labels.MatchRegexp, "pod", "$pod") {
						t.Errorf("%s: %s does not follow the variables: want job=\"$job\", namespace=\"$namespace\", pod=~\"$pod\"", what, vs)
					}
				}
				parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
					if c, ok := n.(*parser.Call); ok && c.Func.Name == "histogram_quantile" {
						quantiles[c.Args[0].String()] = true
					}
					return nil
				})
			}
		}
		for _, f := range dashboardFamilies {
			if !shown[f] {
				t.Errorf("no panel shows %s", f)
			}
		}
		for _, q := range []string{"0.5", "0.99"} {
			if !quantiles[q] {
				t.Errorf("no panel shows the %s quantile of latency", q)
			}
		}
		if panels < len(dashboardFamilies) {
			t.Errorf("%d panels, want at least %d", panels, len(dashboardFamilies))
		}
	})
}

// flatten lists the panels with those of collapsed rows.
func flatten(panels []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range panels {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

var labelValuesCall = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// labelValues splits Grafana's label_values(selector, label).
func labelValues(def string) (selector, label string, ok bool) {
	m := labelValuesCall.FindStringSubmatch(strings.TrimSpace(def))
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// metricName is the name a lone selector selects.
func metricName(node parser.Expr) string {
	if vs, ok := node.(*parser.VectorSelector); ok {
		return vs.Name
	}
	return ""
}

package check

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runtimeUser is the distroless "nonroot" user the image runs as.
const runtimeUser = 65532

func TestContainerPortsMatchConfig(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	img := loadDockerfile(t)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		c := b.container(t)
		for _, tc := range []struct{ name, section string }{{"http", "server"}, {"admin", "admin"}} {
			want := cfg.port(t, c.Env, tc.section)
			if got := b.port(t, intstr.FromString(tc.name)); got != want {
				t.Errorf("container port %q = %d, want %d (%s.addr)", tc.name, got, want, tc.section)
			}
			if !slices.Contains(img.expose, want) {
				t.Errorf("Dockerfile EXPOSE %v lacks %d (%s.addr)", img.expose, want, tc.section)
			}
		}
	})
}

func TestProbesUseAdminEndpoints(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		c := b.container(t)
		admin := b.port(t, intstr.FromString("admin"))
		for _, tc := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"startupProbe", c.StartupProbe, "/healthz"},
			{"readinessProbe", c.ReadinessProbe, "/readyz"},
			{"livenessProbe", c.LivenessProbe, "/healthz"},
		} {
			if tc.probe == nil || tc.probe.HTTPGet == nil {
				t.Errorf("%s: want an HTTP GET probe, got %+v", tc.name, tc.probe)
				continue
			}
			g := tc.probe.HTTPGet
			if g.Path != tc.path {
				t.Errorf("%s path = %q, want %q", tc.name, g.Path, tc.path)
			}
			if got := b.port(t, g.Port); got != admin || admin == 0 {
				t.Errorf("%s port %s resolves to %d, want the admin port %d", tc.name, g.Port.String(), got, admin)
			}
		}
		if t.Failed() {
			return
		}
		// Liveness must be more patient than readiness: a pod that is merely
		// busy or draining is taken out of rotation, not restarted.
		if lw, rw := probeWindow(c.LivenessProbe), probeWindow(c.ReadinessProbe); lw <= rw {
			t.Errorf("liveness gives up after %v, readiness after %v: liveness must wait longer", lw, rw)
		}
		if sw := probeWindow(c.StartupProbe); sw < 30*time.Second {
			t.Errorf("startup probe allows %v for start-up, want at least 30s (database open and seed)", sw)
		}
	})
}

func TestShutdownTimelineFitsGracePeriod(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		c := b.container(t)
		spec := b.deployment(t).Spec.Template.Spec
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
			t.Fatalf("want a native preStop sleep (the image has no shell), got %+v", c.Lifecycle)
		}
		if c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("preStop exec needs a shell the distroless image lacks: %v", c.Lifecycle.PreStop.Exec.Command)
		}
		preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if preStop <= 0 {
			t.Errorf("preStop sleep %v: want a few seconds for endpoint removal to spread", preStop)
		}
		drain := cfg.duration(t, c.Env, "shutdown", "drain")
		timeout := cfg.duration(t, c.Env, "shutdown", "timeout")
		if spec.TerminationGracePeriodSeconds == nil {
			t.Fatal("terminationGracePeriodSeconds unset: the 30s default leaves no margin")
		}
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		const margin = 5 * time.Second
		if need := preStop + drain + timeout + margin; grace < need {
			t.Errorf("grace period %v < preStop %v + shutdown.drain %v + shutdown.timeout %v + margin %v", grace, preStop, drain, timeout, margin)
		}
		// Readiness must notice the draining 503 before the listener stops.
		if r := c.ReadinessProbe; r != nil && probeWindow(r) > drain {
			notice := probeWindow(r)
			t.Errorf("readiness needs %v to see the drain, longer than shutdown.drain %v", notice, drain)
		}
	})
}

func TestRollingUpdateKeepsCapacity(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		s := b.deployment(t).Spec.Strategy
		if s.Type != "RollingUpdate" || s.RollingUpdate == nil {
			t.Fatalf("strategy %+v, want RollingUpdate", s)
		}
		if u := s.RollingUpdate.MaxUnavailable; u == nil || u.String() != "0" && u.String() != "0%" {
			t.Errorf("maxUnavailable %v, want 0", u)
		}
		if sg := s.RollingUpdate.MaxSurge; sg == nil || sg.String() == "0" || sg.String() == "0%" {
			t.Errorf("maxSurge %v, want at least one extra pod", sg)
		}
	})
}

func TestResourcesAndMemoryLimit(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		c := b.container(t)
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() {
			t.Error("no CPU request: the HPA's CPU utilisation is relative to it")
		}
		memLimit := lim.Memory()
		if memLimit.IsZero() {
			t.Fatal("no memory limit")
		}
		if req.Memory().Cmp(*memLimit) != 0 {
			t.Errorf("memory request %s != limit %s", req.Memory(), memLimit)
		}
		var gml string
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				gml = e.Value
			}
		}
		n, err := goMemLimit(gml)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := memLimit.Value()*80/100, memLimit.Value()*95/100
		if n < lo || n > hi {
			t.Errorf("GOMEMLIMIT %s = %d bytes, want 80..95%% of the memory limit %s (%d..%d)", gml, n, memLimit, lo, hi)
		}
	})
}

func TestSecurityContextRestricted(t *testing.T) {
	img := loadDockerfile(t)
	if u, _, _ := strings.Cut(img.user, ":"); u != strconv.Itoa(runtimeUser) {
		t.Errorf("Dockerfile USER %q, want numeric %d so runAsNonRoot can verify it", img.user, runtimeUser)
	}
	eachOverlay(t, func(t *testing.T, b *bundle) {
		spec := b.deployment(t).Spec.Template.Spec
		c := b.container(t)
		ps := spec.SecurityContext
		if ps == nil || !isTrue(ps.RunAsNonRoot) || ps.RunAsUser == nil || *ps.RunAsUser != runtimeUser {
			t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d", ps, runtimeUser)
		}
		if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("pod seccompProfile: want RuntimeDefault")
		}
		cs := c.SecurityContext
		if cs == nil {
			t.Fatal("container securityContext unset")
		}
		if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation: want false")
		}
		if !isTrue(cs.ReadOnlyRootFilesystem) {
			t.Error("readOnlyRootFilesystem: want true")
		}
		if isTrue(cs.Privileged) {
			t.Error("privileged: want false")
		}
		if cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) != 0 {
			t.Errorf("capabilities %+v: want drop [ALL], add none", cs.Capabilities)
		}
		if cs.RunAsUser != nil && *cs.RunAsUser != runtimeUser {
			t.Errorf("container runAsUser %d, want %d", *cs.RunAsUser, runtimeUser)
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Error("host namespaces are not allowed by the restricted profile")
		}
		for _, v := range spec.Volumes {
			if v.HostPath != nil {
				t.Errorf("volume %s is a hostPath", v.Name)
			}
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Error("pod automountServiceAccountToken: want false")
		}
		sa := only(t, b, "ServiceAccount", b.serviceAccounts)
		if spec.ServiceAccountName != sa.Name {
			t.Errorf("serviceAccountName %q, want the overlay's ServiceAccount %q", spec.ServiceAccountName, sa.Name)
		}
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Error("ServiceAccount automountServiceAccountToken: want false")
		}
	})
}

func TestTopologySpreadAcrossNodesAndZones(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		d := b.deployment(t)
		pods := labels.Set(d.Spec.Template.Labels)
		seen := map[string]bool{}
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			seen[c.TopologyKey] = true
			if !slices.Contains(c.MatchLabelKeys, "pod-template-hash") {
				t.Errorf("%s: matchLabelKeys %v lacks pod-template-hash: rollouts would count the old ReplicaSet", c.TopologyKey, c.MatchLabelKeys)
			}
			if !selects(t, c.LabelSelector, pods) {
				t.Errorf("%s: labelSelector %v does not select the pods %v", c.TopologyKey, c.LabelSelector, pods)
			}
		}
		for _, key := range []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"} {
			if !seen[key] {
				t.Errorf("no topologySpreadConstraint on %s", key)
			}
		}
	})
}

func TestPrometheusScrapesAdminPort(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		a := b.deployment(t).Spec.Template.Annotations
		scrape := "true"
		if b.monitoring {
			scrape = "false" // the ServiceMonitor scrapes instead: TestServiceMonitorScrapesAdminPort
		}
		want := map[string]string{
			"prometheus.io/scrape": scrape,
			"prometheus.io/port":   strconv.Itoa(int(cfg.port(t, b.container(t).Env, "admin"))),
			"prometheus.io/path":   "/metrics",
		}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("pod annotation %s = %q, want %q", k, a[k], v)
			}
		}
	})
}

func TestImageIsPinned(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		ref := b.container(t).Image
		name, tag := ref, ""
		if i := lastColonAfterSlash(ref); i >= 0 {
			name, tag = ref[:i], ref[i+1:]
		}
		if tag == "" || tag == "latest" {
			t.Errorf("image %q: want an explicit tag, not latest", ref)
		}
		if b.pulled && !strings.Contains(name, "/") {
			t.Errorf("image %q names no registry: the cluster cannot pull a local name", ref)
		}
	})
}

// selects reports whether sel matches set; a nil or empty selector selects
// nothing here, because every selector in the manifests must name the app.
func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

// probeWindow is how long a probe fails before the kubelet acts on it.
func probeWindow(p *corev1.Probe) time.Duration {
	return time.Duration(p.PeriodSeconds*p.FailureThreshold) * time.Second
}

func isTrue(b *bool) bool { return b != nil && *b }

// lastColonAfterSlash finds the tag separator of an image reference, skipping
// a registry's host:port.
func lastColonAfterSlash(ref string) int {
	for i := len(ref) - 1; i >= 0 && ref[i] != '/'; i-- {
		if ref[i] == ':' {
			return i
		}
	}
	return -1
}

// TestTraceResourceNamesThePod: OTEL_RESOURCE_ATTRIBUTES gives exported
// spans the pod's name and namespace, from the downward API, through
// variables defined before it (Kubernetes expands $(VAR) only then).
func TestTraceResourceNamesThePod(t *testing.T) {
	want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
	eachOverlay(t, func(t *testing.T, b *bundle) {
		defined := map[string]bool{}
		var attrs string
		for _, e := range b.container(t).Env {
			if path, ok := want[e.Name]; ok {
				if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != path {
					t.Errorf("%s: env %s does not come from the downward API's %s", b.name(), e.Name, path)
				}
				defined[e.Name] = true
			}
			if e.Name == "OTEL_RESOURCE_ATTRIBUTES" {
				attrs = e.Value
				for v := range want {
					if strings.Contains(attrs, "$("+v+")") && !defined[v] {
						t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES uses $(%s) before it is defined", b.name(), v)
					}
				}
			}
		}
		for _, a := range []string{"k8s.pod.name=$(POD_NAME)", "k8s.namespace.name=$(POD_NAMESPACE)"} {
			if !slices.Contains(strings.Split(attrs, ","), a) {
				t.Errorf("%s: OTEL_RESOURCE_ATTRIBUTES %q lacks %s", b.name(), attrs, a)
			}
		}
	})
}

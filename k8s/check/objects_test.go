package check

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// rpsMetric is the Pods metric the HPA scales on, served by prometheus-adapter.
const rpsMetric = "http_requests_per_second"

func TestBaseConfigIsCopyOfRootConfig(t *testing.T) {
	root := loadConfig(t, rootConfigPath)
	base := loadConfig(t, baseConfigPath)
	if !bytes.Equal(root.raw, base.raw) {
		t.Fatalf("%s differs from %s: run `make k8s-config` to copy it (kustomize reads no file outside k8s/base)", baseConfigPath, rootConfigPath)
	}
}

func TestConfigMapMountedWhereImageReadsIt(t *testing.T) {
	root := loadConfig(t, rootConfigPath)
	want := loadDockerfile(t).configPath(t)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		cm := b.configMap(t)
		file := path.Base(want)
		// Compared with the root file itself, not the base copy: this is what
		// the pods will read.
		if got := cm.Data[file]; got != string(root.raw) {
			t.Errorf("ConfigMap %s key %q does not hold %s", cm.Name, file, rootConfigPath)
		}
		spec := b.deployment(t).Spec.Template.Spec
		var volume string
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
				volume = v.Name
			}
		}
		if volume == "" {
			t.Fatalf("no volume refers to the generated ConfigMap %s", cm.Name)
		}
		mounted := false
		for _, m := range b.container(t).VolumeMounts {
			if m.Name == volume {
				mounted = m.MountPath == path.Dir(want) && m.SubPath == "" && m.ReadOnly
			}
		}
		if !mounted {
			t.Errorf("volume %s must be mounted read-only at %s, where the image's ENTRYPOINT reads %s", volume, path.Dir(want), want)
		}
	})
}

func TestEnvOverridesNameConfigKeys(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		for _, e := range b.container(t).Env {
			if !strings.HasPrefix(e.Name, envPrefix) {
				continue
			}
			// An unknown key stops the server at start-up (exit 2): catch
			// a misspelt variable here instead of in a crash loop.
			section, key, ok := splitEnvName(e.Name)
			if !ok || !cfg.has(section, key) {
				t.Errorf("env %s names no key of %s (want HOTPATH_SECTION__KEY)", e.Name, rootConfigPath)
			}
		}
	})
}

func TestSelectorsMatchPodLabels(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		d := b.deployment(t)
		pods := labels.Set(d.Spec.Template.Labels)
		if !selects(t, d.Spec.Selector, pods) {
			t.Errorf("Deployment selector %v does not select its pod labels %v", d.Spec.Selector, pods)
		}
		svc := b.appService(t)
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(pods) {
			t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, pods)
		}
		pdb := only(t, b, "PodDisruptionBudget", b.pdbs)
		if !selects(t, pdb.Spec.Selector, pods) {
			t.Errorf("PodDisruptionBudget selector %v does not select the pods %v", pdb.Spec.Selector, pods)
		}
		np := only(t, b, "NetworkPolicy", b.netpols)
		if !selects(t, &np.Spec.PodSelector, pods) {
			t.Errorf("NetworkPolicy podSelector %v does not select the pods %v", np.Spec.PodSelector, pods)
		}
	})
}

func TestServiceExposesAppPortOnly(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		svc := b.appService(t)
		if len(svc.Spec.Ports) != 1 {
			t.Fatalf("Service has %d ports, want only the application port", len(svc.Spec.Ports))
		}
		app := b.port(t, intstr.FromString("http"))
		p := svc.Spec.Ports[0]
		if got := b.port(t, p.TargetPort); got != app || app == 0 {
			t.Errorf("Service targetPort %s resolves to %d, want the application port %d", p.TargetPort.String(), got, app)
		}
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service type %s: exposing hotpath outside the cluster is the ingress's job", svc.Spec.Type)
		}
	})
}

func TestNamespaceEnforcesRestricted(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		if b.namespace == "" {
			if len(b.namespaces) != 0 {
				t.Errorf("the base must leave the namespace to overlays, got %d Namespace objects", len(b.namespaces))
			}
			return
		}
		ns := only(t, b, "Namespace", b.namespaces)
		if ns.Name != b.namespace {
			t.Errorf("Namespace %s, want %s", ns.Name, b.namespace)
		}
		if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("Namespace label pod-security.kubernetes.io/enforce = %q, want restricted", got)
		}
		if d := b.deployment(t); d.Namespace != b.namespace {
			t.Errorf("Deployment in namespace %q, want %q", d.Namespace, b.namespace)
		}
	})
}

func TestAutoscaler(t *testing.T) {
	rules := loadAdapterRules(t)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		d := b.deployment(t)
		if !b.hpa {
			if len(b.hpas) != 0 {
				t.Fatalf("want no HorizontalPodAutoscaler, got %d", len(b.hpas))
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("without an autoscaler want replicas 1, got %v", d.Spec.Replicas)
			}
			return
		}
		hpa := only(t, b, "HorizontalPodAutoscaler", b.hpas)
		if d.Spec.Replicas != nil {
			t.Errorf("Deployment sets replicas %d: every apply would fight the autoscaler", *d.Spec.Replicas)
		}
		ref := hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("scaleTargetRef %+v, want apps/v1 Deployment %s", ref, d.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			t.Errorf("minReplicas %v, want at least 2 so one pod can be drained or lost", hpa.Spec.MinReplicas)
		} else if hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
			t.Errorf("maxReplicas %d <= minReplicas %d", hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
		}
		var cpu, rps bool
		for _, m := range hpa.Spec.Metrics {
			switch {
			case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU:
				u := m.Resource.Target.AverageUtilization
				cpu = m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && u != nil && *u > 0 && *u <= 100
			case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && m.Pods.Metric.Name == rpsMetric:
				v := m.Pods.Target.AverageValue
				rps = m.Pods.Target.Type == autoscalingv2.AverageValueMetricType && v != nil && v.Sign() > 0
			}
		}
		if !cpu {
			t.Error("no CPU Utilization metric with a target in 1..100")
		}
		if !rps {
			t.Errorf("no Pods metric %s with a positive AverageValue target", rpsMetric)
		}
		if !servesMetric(rules, rpsMetric) {
			t.Errorf("%s has no rule serving %s from the server's http_requests_total rate", adapterValuesPath, rpsMetric)
		}
		bh := hpa.Spec.Behavior
		if bh == nil || bh.ScaleUp == nil || bh.ScaleDown == nil || len(bh.ScaleUp.Policies) == 0 || len(bh.ScaleDown.Policies) == 0 {
			t.Fatalf("behavior %+v: want scale-up and scale-down policies", bh)
		}
		if w := bh.ScaleDown.StabilizationWindowSeconds; w == nil || *w < 60 {
			t.Errorf("scale-down stabilization %v: want at least 60s so a lull does not cost capacity", w)
		}
	})
}

// servesMetric reports whether a prometheus-adapter rule exposes name as a
// per-second rate of http_requests_total, the counter the server exports.
func servesMetric(rules []adapterRule, name string) bool {
	for _, r := range rules {
		if r.Name.As == name && strings.HasPrefix(r.SeriesQuery, "http_requests_total{") &&
			strings.Contains(r.MetricsQuery, "rate(<<.Series>>") {
			return true
		}
	}
	return false
}

func TestDisruptionBudgetAllowsDrains(t *testing.T) {
	eachOverlay(t, func(t *testing.T, b *bundle) {
		pdb := only(t, b, "PodDisruptionBudget", b.pdbs)
		if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != "AlwaysAllow" {
			t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow so broken pods never block a node drain", p)
		}
		// The fewest pods the Deployment runs: the autoscaler's floor, or
		// the fixed replica count.
		replicas := 1
		if len(b.hpas) == 1 && b.hpas[0].Spec.MinReplicas != nil {
			replicas = int(*b.hpas[0].Spec.MinReplicas)
		} else if r := b.deployment(t).Spec.Replicas; r != nil {
			replicas = int(*r)
		}
		var allowed int
		switch {
		case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable == nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, replicas, true)
			if err != nil {
				t.Fatalf("maxUnavailable: %v", err)
			}
			allowed = n
		case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable == nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, replicas, true)
			if err != nil {
				t.Fatalf("minAvailable: %v", err)
			}
			allowed = replicas - n
		default:
			t.Fatal("want exactly one of maxUnavailable and minAvailable")
		}
		if allowed < 1 {
			t.Errorf("at %d replicas the budget allows %d evictions: node drains would hang", replicas, allowed)
		}
		if replicas >= 2 && allowed >= replicas {
			t.Errorf("at %d replicas the budget allows %d evictions: a drain could stop every pod", replicas, allowed)
		}
	})
}

// client is a pod that may try to reach hotpath.
type client struct {
	namespace string
	pod       labels.Set
}

func TestNetworkPolicyGuardsAdminPort(t *testing.T) {
	prometheus := labels.Set{"app.kubernetes.io/name": "prometheus"}
	eachOverlay(t, func(t *testing.T, b *bundle) {
		np := only(t, b, "NetworkPolicy", b.netpols)
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Fatalf("policyTypes %v lacks Ingress", np.Spec.PolicyTypes)
		}
		app := b.port(t, intstr.FromString("http"))
		admin := b.port(t, intstr.FromString("admin"))
		for _, tc := range []struct {
			from client
			port int32
			want bool
		}{
			{client{"default", nil}, app, true},
			{client{b.namespace, labels.Set{"app": "other"}}, app, true},
			{client{"default", nil}, admin, false},
			{client{b.namespace, labels.Set{"app": "other"}}, admin, false},
			{client{"default", prometheus}, admin, false},
			{client{"monitoring", labels.Set{"app.kubernetes.io/name": "grafana"}}, admin, false},
			{client{"monitoring", prometheus}, admin, true},
		} {
			if got := b.admits(t, np, tc.from, tc.port); got != tc.want {
				t.Errorf("pod %v in namespace %q to port %d: admitted %v, want %v", tc.from.pod, tc.from.namespace, tc.port, got, tc.want)
			}
		}
	})
}

// admits evaluates np's ingress rules the way the network plugin does for a
// connection from c to port of a selected pod. An ipBlock peer counts as
// admitting everyone: it cannot tell pods apart.
func (b *bundle) admits(t *testing.T, np *networkingv1.NetworkPolicy, c client, port int32) bool {
	t.Helper()
	nsLabels := labels.Set{"kubernetes.io/metadata.name": c.namespace}
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port == nil || b.port(t, *p.Port) == port {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		if len(rule.From) == 0 {
			return true
		}
		for _, peer := range rule.From {
			if peer.IPBlock != nil {
				return true
			}
			nsOK := c.namespace == np.Namespace
			if peer.NamespaceSelector != nil {
				nsOK = peerSelects(t, peer.NamespaceSelector, nsLabels)
			}
			podOK := peer.PodSelector == nil || peerSelects(t, peer.PodSelector, c.pod)
			if nsOK && podOK {
				return true
			}
		}
	}
	return false
}

// peerSelects is NetworkPolicy's selector rule: unlike selects, an empty
// selector matches everything.
func peerSelects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

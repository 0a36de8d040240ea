package check

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlay is one kustomization a user can deploy, with what it must contain.
type overlay struct {
	dir       string
	namespace string // "" for the base, which leaves it to the overlays
	hpa       bool   // whether it ships the HorizontalPodAutoscaler
	pulled    bool   // whether the image comes from a registry, not loaded into a local cluster
	tokens    bool   // whether bearer tokens come from a mounted Secret (auth.tokens_file)
	// monitoring adds the monitoring component to the overlay, as
	// `kustomize edit add component ../../components/monitoring` does.
	monitoring bool
}

// monitoringComponent holds the Prometheus Operator and Grafana objects,
// relative to an overlay's directory.
const monitoringComponent = "../../components/monitoring"

var overlays = []overlay{
	{dir: "../base", hpa: true},
	{dir: "../overlays/dev", namespace: "hotpath-dev", hpa: false},
	{dir: "../overlays/prod", namespace: "hotpath", hpa: true, pulled: true, tokens: true},
	{dir: "../overlays/prod", namespace: "hotpath", hpa: true, pulled: true, tokens: true, monitoring: true},
}

// name is how subtests and messages call the overlay.
func (o overlay) name() string {
	if o.monitoring {
		return path.Base(o.dir) + "+monitoring"
	}
	return path.Base(o.dir)
}

// bundle is one rendered overlay, each object decoded into its API type.
type bundle struct {
	overlay
	namespaces      []*corev1.Namespace
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	rules           []*monitoringv1.PrometheusRule
}

// rendered caches renders: every test looks at the same overlays.
var rendered = map[string]*bundle{}

// render builds o with kustomize as `kubectl apply -k` would and decodes the
// result strictly, so a field the API does not know fails here rather than
// being dropped by the API server.
func render(t *testing.T, o overlay) *bundle {
	t.Helper()
	if b, ok := rendered[o.name()]; ok {
		return b
	}
	dir := o.dir
	if o.monitoring {
		dir = withComponent(t, o.dir, monitoringComponent)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", o.name(), err)
	}
	b := &bundle{overlay: o}
	for _, r := range resources.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: encode %s: %v", o.name(), r.CurId(), err)
		}
		gvk := r.GetGvk()
		if err := b.decode(gvk.ApiVersion(), gvk.Kind, doc); err != nil {
			t.Fatalf("%s: %s %s %s: %v\n%s", o.name(), gvk.ApiVersion(), gvk.Kind, r.GetName(), err, doc)
		}
	}
	rendered[o.name()] = b
	return b
}

// withComponent copies the manifests to a temporary directory, adds
// component to the copy of the overlay in dir as `kustomize edit add
// component` would, and returns the copy's overlay directory.
func withComponent(t *testing.T, dir, component string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("..")); err != nil {
		t.Fatalf("copy the manifests: %v", err)
	}
	rel, err := filepath.Rel("..", dir)
	if err != nil {
		t.Fatal(err)
	}
	kustomization := filepath.Join(root, rel, "kustomization.yaml")
	raw, err := os.ReadFile(kustomization)
	if err != nil {
		t.Fatal(err)
	}
	raw = fmt.Appendf(raw, "\ncomponents:\n  - %s\n", component)
	if err := os.WriteFile(kustomization, raw, 0o644); err != nil {
		t.Fatalf("add the component to %s: %v", kustomization, err)
	}
	return filepath.Join(root, rel)
}

func (b *bundle) decode(apiVersion, kind string, doc []byte) error {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return decodeInto(doc, &b.namespaces)
	case "v1 ServiceAccount":
		return decodeInto(doc, &b.serviceAccounts)
	case "v1 ConfigMap":
		return decodeInto(doc, &b.configMaps)
	case "v1 Service":
		return decodeInto(doc, &b.services)
	case "apps/v1 Deployment":
		return decodeInto(doc, &b.deployments)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, &b.hpas)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, &b.pdbs)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decodeInto(doc, &b.netpols)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return decodeInto(doc, &b.serviceMonitors)
	case "monitoring.coreos.com/v1 PrometheusRule":
		return decodeInto(doc, &b.rules)
	}
	return fmt.Errorf("unexpected kind %s %s: add it to bundle.decode with its checks", apiVersion, kind)
}

func decodeInto[T any](doc []byte, list *[]*T) error {
	obj := new(T)
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("strict decode: %w", err)
	}
	*list = append(*list, obj)
	return nil
}

// eachOverlay runs check on every rendered overlay as a subtest.
func eachOverlay(t *testing.T, check func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, o := range overlays {
		t.Run(o.name(), func(t *testing.T) { check(t, render(t, o)) })
	}
}

// only returns the single object of a kind, failing the test if there are
// none or several.
func only[T any](t *testing.T, b *bundle, kind string, list []*T) *T {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("%s: want exactly one %s, got %d", b.name(), kind, len(list))
	}
	return list[0]
}

// appService is the Service clients reach the application through.
func (b *bundle) appService(t *testing.T) *corev1.Service {
	t.Helper()
	return named(t, b, "Service", b.services, func(s *corev1.Service) string { return s.Name }, "hotpath")
}

// configMap is the ConfigMap generated from config.toml (its name carries a
// hash suffix).
func (b *bundle) configMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	var found []*corev1.ConfigMap
	for _, cm := range b.configMaps {
		if strings.HasPrefix(cm.Name, "hotpath-config-") {
			found = append(found, cm)
		}
	}
	return only(t, b, "ConfigMap hotpath-config-*", found)
}

// named returns the single object of a kind called name.
func named[T any](t *testing.T, b *bundle, kind string, list []*T, nameOf func(*T) string, name string) *T {
	t.Helper()
	var found []*T
	for _, o := range list {
		if nameOf(o) == name {
			found = append(found, o)
		}
	}
	return only(t, b, kind+" "+name, found)
}

func (b *bundle) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return only(t, b, "Deployment", b.deployments)
}

// container is the hotpath container of the Deployment.
func (b *bundle) container(t *testing.T) *corev1.Container {
	t.Helper()
	d := b.deployment(t)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%s: want one container in the pod, got %d", b.name(), n)
	}
	return &d.Spec.Template.Spec.Containers[0]
}

// port resolves a port given by name or number against the container's
// declared ports and returns its number, or 0 when the container declares no
// such port.
func (b *bundle) port(t *testing.T, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range b.container(t).Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

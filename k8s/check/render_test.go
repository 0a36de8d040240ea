package check

import (
	"fmt"
	"path"
	"testing"

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
}

var overlays = []overlay{
	{dir: "../base", hpa: true},
	{dir: "../overlays/dev", namespace: "hotpath-dev", hpa: false},
	{dir: "../overlays/prod", namespace: "hotpath", hpa: true, pulled: true},
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
}

// rendered caches renders: every test looks at the same overlays.
var rendered = map[string]*bundle{}

// render builds o with kustomize as `kubectl apply -k` would and decodes the
// result strictly, so a field the API does not know fails here rather than
// being dropped by the API server.
func render(t *testing.T, o overlay) *bundle {
	t.Helper()
	if b, ok := rendered[o.dir]; ok {
		return b
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), o.dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", o.dir, err)
	}
	b := &bundle{overlay: o}
	for _, r := range resources.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: encode %s: %v", o.dir, r.CurId(), err)
		}
		gvk := r.GetGvk()
		if err := b.decode(gvk.ApiVersion(), gvk.Kind, doc); err != nil {
			t.Fatalf("%s: %s %s %s: %v\n%s", o.dir, gvk.ApiVersion(), gvk.Kind, r.GetName(), err, doc)
		}
	}
	rendered[o.dir] = b
	return b
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
		t.Run(path.Base(o.dir), func(t *testing.T) { check(t, render(t, o)) })
	}
}

// only returns the single object of a kind, failing the test if there are
// none or several.
func only[T any](t *testing.T, b *bundle, kind string, list []*T) *T {
	t.Helper()
	if len(list) != 1 {
		t.Fatalf("%s: want exactly one %s, got %d", b.dir, kind, len(list))
	}
	return list[0]
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
		t.Fatalf("%s: want one container in the pod, got %d", b.dir, n)
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

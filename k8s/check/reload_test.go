package check

import (
	"path"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestTokensReachPodsAsAReloadableFile checks what lets a rotated Secret
// reach running pods: the bearer tokens come from a Secret mounted as a
// directory (the kubelet swaps its ..data symlink on an update; a subPath
// mount never sees one) at the file auth.tokens_file names, never from a
// variable (fixed for the life of the process), and the server watches it.
func TestTokensReachPodsAsAReloadableFile(t *testing.T) {
	cfg := loadConfig(t, rootConfigPath)
	eachOverlay(t, func(t *testing.T, b *bundle) {
		c := b.container(t)
		if w := cfg.effective(t, c.Env, "reload", "watch"); w != "true" {
			t.Errorf("reload.watch = %s: an updated ConfigMap or Secret would reach the process only with SIGHUP", w)
		}
		var file string
		for _, e := range c.Env {
			switch e.Name {
			case envName("auth", "tokens"):
				t.Errorf("%s is set: tokens in a variable cannot be rotated without a rollout; mount them for auth.tokens_file", e.Name)
			case envName("auth", "tokens_file"):
				if e.ValueFrom != nil {
					t.Fatalf("%s comes from %v: want the literal path of the mounted file", e.Name, e.ValueFrom)
				}
				file = e.Value
			}
		}
		if !b.tokens {
			if file != "" {
				t.Errorf("auth.tokens_file = %s in an overlay that mounts no tokens", file)
			}
			return
		}
		if file == "" || !path.IsAbs(file) {
			t.Fatalf("auth.tokens_file = %q: want the absolute path of the mounted Secret's file", file)
		}
		spec := b.deployment(t).Spec.Template.Spec
		var vol *corev1.Volume
		for i, v := range spec.Volumes {
			if v.Secret != nil {
				for _, item := range v.Secret.Items {
					if item.Path == path.Base(file) {
						vol = &spec.Volumes[i]
					}
				}
			}
		}
		if vol == nil {
			t.Fatalf("no Secret volume projects a key to %s, the file auth.tokens_file names", path.Base(file))
		}
		if vol.Secret.Optional != nil && *vol.Secret.Optional {
			t.Errorf("volume %s is optional: a missing Secret would start pods that refuse every write without saying why", vol.Name)
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.Name != vol.Name {
				continue
			}
			if m.SubPath != "" || m.SubPathExpr != "" {
				t.Errorf("volume %s is mounted with a subPath: the kubelet never updates such a mount, so a rotated token would not arrive", vol.Name)
			}
			if !m.ReadOnly {
				t.Errorf("volume %s is mounted writable", vol.Name)
			}
			mounted = m.MountPath == path.Dir(file)
		}
		if !mounted {
			t.Errorf("volume %s is not mounted at %s, the directory of auth.tokens_file", vol.Name, path.Dir(file))
		}
	})
}

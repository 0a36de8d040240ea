package check

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Files outside the manifests that the manifests must agree with.
const (
	rootConfigPath    = "../../config.toml"
	baseConfigPath    = "../base/config.toml"
	dockerfilePath    = "../../Dockerfile"
	adapterValuesPath = "../prometheus-adapter/values.yaml"
)

// envPrefix starts every environment variable that overrides a config key:
// HOTPATH_SECTION__KEY.
const envPrefix = "HOTPATH_"

// serverConfig is the repository's config.toml, the file the ConfigMap is
// generated from.
type serverConfig struct {
	raw      []byte
	sections map[string]map[string]any
}

func loadConfig(t *testing.T, path string) *serverConfig {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read server config: %v", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	c := &serverConfig{raw: raw, sections: map[string]map[string]any{}}
	for name, v := range doc {
		if section, ok := v.(map[string]any); ok {
			c.sections[name] = section
		}
	}
	return c
}

// has reports whether config.toml sets section.key.
func (c *serverConfig) has(section, key string) bool {
	_, ok := c.sections[section][key]
	return ok
}

// effective returns section.key as the container will see it: a literal
// HOTPATH_SECTION__KEY variable in env wins over config.toml. It fails the
// test when the value cannot be known offline (taken from a Secret) or is
// set nowhere.
func (c *serverConfig) effective(t *testing.T, env []corev1.EnvVar, section, key string) string {
	t.Helper()
	name := envName(section, key)
	for _, e := range env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom != nil {
			t.Fatalf("%s comes from %v: the manifests must set %s.%s literally so it can be checked", name, e.ValueFrom, section, key)
		}
		return e.Value
	}
	v, ok := c.sections[section][key]
	if !ok {
		t.Fatalf("%s sets no %s.%s and no %s overrides it", rootConfigPath, section, key, name)
	}
	return fmt.Sprint(v)
}

func (c *serverConfig) port(t *testing.T, env []corev1.EnvVar, section string) int32 {
	t.Helper()
	addr := c.effective(t, env, section, "addr")
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s.addr %q: %v", section, addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		t.Fatalf("%s.addr %q: want a fixed port, got %q", section, addr, p)
	}
	return int32(n)
}

func (c *serverConfig) duration(t *testing.T, env []corev1.EnvVar, section, key string) time.Duration {
	t.Helper()
	s := c.effective(t, env, section, key)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s.%s = %q: %v", section, key, s, err)
	}
	return d
}

func envName(section, key string) string {
	return envPrefix + strings.ToUpper(section) + "__" + strings.ToUpper(key)
}

// splitEnvName is envName's inverse; ok is false for a name that does not
// have the HOTPATH_SECTION__KEY shape.
func splitEnvName(name string) (section, key string, ok bool) {
	rest, found := strings.CutPrefix(name, envPrefix)
	if !found {
		return "", "", false
	}
	section, key, ok = strings.Cut(rest, "__")
	if !ok || section == "" || key == "" {
		return "", "", false
	}
	return strings.ToLower(section), strings.ToLower(key), true
}

// image is what the Dockerfile's runtime stage (after the last FROM) says.
type image struct {
	buildStage string // every line before the runtime stage
	base       string
	user       string
	expose     []int32
	entrypoint []string
	copies     []string // COPY lines of the runtime stage
}

func loadDockerfile(t *testing.T) *image {
	t.Helper()
	raw, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	// Join continuation lines so each instruction is one line.
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	lines := strings.Split(text, "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(l)), "FROM ") {
			last = i
		}
	}
	if last < 0 {
		t.Fatalf("%s has no FROM", dockerfilePath)
	}
	img := &image{buildStage: strings.Join(lines[:last], "\n")}
	for _, l := range lines[last:] {
		instr, args, _ := strings.Cut(strings.TrimSpace(l), " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "FROM":
			img.base = strings.Fields(args)[0]
		case "USER":
			img.user = args
		case "EXPOSE":
			for _, f := range strings.Fields(args) {
				p, err := strconv.ParseUint(strings.TrimSuffix(f, "/tcp"), 10, 16)
				if err != nil {
					t.Fatalf("%s: EXPOSE %q: %v", dockerfilePath, f, err)
				}
				img.expose = append(img.expose, int32(p))
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(args), &img.entrypoint); err != nil {
				t.Fatalf("%s: ENTRYPOINT must be exec form (there is no shell in the image): %v", dockerfilePath, err)
			}
		case "COPY":
			img.copies = append(img.copies, args)
		}
	}
	return img
}

// configPath is the file the image's ENTRYPOINT passes to -config.
func (img *image) configPath(t *testing.T) string {
	t.Helper()
	for i, a := range img.entrypoint {
		if a == "-config" && i+1 < len(img.entrypoint) {
			return img.entrypoint[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			return v
		}
	}
	t.Fatalf("%s: ENTRYPOINT %q passes no -config", dockerfilePath, img.entrypoint)
	return ""
}

// adapterRule is the part of a prometheus-adapter rule the HPA depends on.
type adapterRule struct {
	SeriesQuery string `json:"seriesQuery"`
	Name        struct {
		Matches string `json:"matches"`
		As      string `json:"as"`
	} `json:"name"`
	MetricsQuery string `json:"metricsQuery"`
}

func loadAdapterRules(t *testing.T) []adapterRule {
	t.Helper()
	raw, err := os.ReadFile(adapterValuesPath)
	if err != nil {
		t.Fatalf("read prometheus-adapter values: %v", err)
	}
	var values struct {
		Rules struct {
			Custom []adapterRule `json:"custom"`
		} `json:"rules"`
	}
	// Not strict: the file is Helm values, of which only the rules matter here.
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("parse %s: %v", adapterValuesPath, err)
	}
	return values.Rules.Custom
}

// goMemLimit parses a GOMEMLIMIT value the way the Go runtime does: an
// integer with an optional B, KiB, MiB, GiB or TiB suffix.
func goMemLimit(s string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("GOMEMLIMIT %q: want an integer with an optional B, KiB, MiB, GiB or TiB suffix", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("GOMEMLIMIT %q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "B": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]]
	return n << shift, nil
}

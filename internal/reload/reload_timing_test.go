package reload

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/hotpath/hotpath/internal/config"
)

// BenchmarkReload is one whole reload of the repository's config.toml with
// two keys changed each time: load every source, compare, prepare, commit.
func BenchmarkReload(b *testing.B) {
	base, err := os.ReadFile("../../config.toml")
	if err != nil {
		b.Fatal(err)
	}
	changed := strings.Replace(strings.Replace(string(base),
		"access_sample = 0.01", "access_sample = 0.5", 1), "max_inflight = 0", "max_inflight = 100", 1)
	dir := b.TempDir()
	paths := [2]string{filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")}
	for i, body := range []string{string(base), changed} {
		if err := os.WriteFile(paths[i], []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	spec := config.Spec{Program: "hotpath", EnvPrefix: "HOTPATH_"}
	n := 0
	load := func() (config.Config, error) {
		n++
		cfg, _, err := config.Load(spec, []string{"-config", paths[n%2]}, nil)
		return cfg, err
	}
	running, err := load()
	if err != nil {
		b.Fatal(err)
	}
	var parts []Part
	for _, k := range spec.ReloadableKeys() {
		parts = append(parts, Part{Keys: []string{k}, Prepare: func(config.Config) (func(), error) { return func() {}, nil }})
	}
	r, err := New(Options{Spec: spec, Load: load, Running: running, ConfigPath: paths[0], Metrics: vm.NewSet(),
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}, parts...)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Reload("bench"); err != nil {
			b.Fatal(err)
		}
	}
}

package reload

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"go.uber.org/goleak"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/testenv"
)

// Every reloader a test starts must leave no goroutine behind once stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// notesConfig is a section of a service's own, with keys a reload applies
// and one that needs a restart.
type notesConfig struct {
	Title    string        `koanf:"title" reload:"true"`
	MaxNotes int           `koanf:"max_notes" reload:"true"`
	Expiry   time.Duration `koanf:"expiry"`
	// Keep may not exceed Expiry: a reload that raises both is refused,
	// since Expiry keeps its running value.
	Keep time.Duration `koanf:"keep" reload:"true"`
}

func (n *notesConfig) Validate() error {
	if n.MaxNotes < 1 {
		return &config.Error{Key: "max_notes", Reason: "must be at least 1"}
	}
	if n.Keep > n.Expiry {
		return &config.Error{Key: "keep", Reason: "must not exceed notes.expiry"}
	}
	return nil
}

// notesSpec is a service named notes with the section above.
func notesSpec() config.Spec {
	return config.Spec{Program: "notes", EnvPrefix: "NOTES_", Sections: []config.Section{
		{Name: "notes", Defaults: &notesConfig{Title: "Notes", MaxNotes: 100, Expiry: time.Hour, Keep: 30 * time.Minute}},
	}}
}

// fixture is a config file, a reloader reading it, and what it did.
type fixture struct {
	spec    config.Spec
	path    string
	set     *vm.Set
	logs    *testenv.Buffer
	loads   atomic.Int64
	applied []string // keys of the parts committed, in order ("notes" for the section's)
	notes   []notesConfig
	mu      sync.Mutex
	// debounce is the reloader's; zero takes the default.
	debounce time.Duration
}

func newFixture(t *testing.T, body string) *fixture {
	t.Helper()
	f := &fixture{spec: notesSpec(), path: filepath.Join(t.TempDir(), "config.toml"), set: vm.NewSet(), logs: &testenv.Buffer{}}
	f.write(t, body)
	return f
}

func (f *fixture) write(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(f.path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) load() (config.Config, error) {
	f.loads.Add(1)
	cfg, _, err := config.Load(f.spec, []string{"-config", f.path}, nil)
	return cfg, err
}

// frameworkKeys are the spec's reloadable keys that are no section's: the
// ones New wants a part for.
func (f *fixture) frameworkKeys() []string {
	section := f.spec.Sections[0].Keys()
	return slices.DeleteFunc(f.spec.ReloadableKeys(), func(k string) bool { return slices.Contains(section, k) })
}

// parts records the commits of one part per reloadable framework key and
// of one for the notes section; fail makes the named key's Prepare fail.
func (f *fixture) parts(fail string) []Part {
	parts := []Part{SectionPart(f.spec.Sections[0], func(next any) (func(), error) {
		n := *next.(*notesConfig)
		return func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applied = append(f.applied, "notes")
			f.notes = append(f.notes, n)
		}, nil
	})}
	for _, k := range f.frameworkKeys() {
		parts = append(parts, Part{Keys: []string{k}, Prepare: func(config.Config) (func(), error) {
			if k == fail {
				return nil, errors.New("prepare " + k + " failed")
			}
			return func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.applied = append(f.applied, k)
			}, nil
		}})
	}
	return parts
}

func (f *fixture) committed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func (f *fixture) reloader(t *testing.T, signals chan os.Signal, fail string) *Reloader {
	t.Helper()
	running, err := f.load()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{
		Spec: f.spec, Load: f.load, Running: running, ConfigPath: f.path, Signals: signals, Debounce: f.debounce,
		Metrics: f.set, Log: slog.New(slog.NewJSONHandler(f.logs, nil)),
	}, f.parts(fail)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// gauge reads a gauge from the metrics the reloader wrote.
func (f *fixture) gauge(name string) float64 {
	var b strings.Builder
	f.set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func (f *fixture) counter(result string) uint64 {
	return f.set.GetOrCreateCounter(`config_reloads_total{result="` + result + `"}`).Get()
}

func TestNewRefusesAReloadableKeyWithoutPart(t *testing.T) {
	f := newFixture(t, "")
	parts := f.parts("")
	first := f.frameworkKeys()[0]
	_, err := New(Options{Spec: f.spec, Load: f.load, Metrics: vm.NewSet(), Log: slog.Default()}, slices.Delete(parts, 1, 2)...)
	if err == nil || !strings.Contains(err.Error(), first) {
		t.Errorf("New without a part for %s: %v, want an error naming it", first, err)
	}
}

// TestNewWantsNoPartForSectionKeys: what applies a section's keys is the
// program's choice, so New does not insist on it.
func TestNewWantsNoPartForSectionKeys(t *testing.T) {
	f := newFixture(t, "")
	if _, err := New(Options{Spec: f.spec, Load: f.load, Metrics: vm.NewSet(), Log: slog.Default()}, f.parts("")[1:]...); err != nil {
		t.Errorf("New without the section's part: %v, want nil", err)
	}
}

func TestNewRefusesAPartForAKeyNoReloadApplies(t *testing.T) {
	f := newFixture(t, "")
	for _, key := range []string{"notes.expiry", "server.addr", "notes.nope"} {
		parts := append(f.parts(""), Part{Keys: []string{key}, Prepare: func(config.Config) (func(), error) { return func() {}, nil }})
		_, err := New(Options{Spec: f.spec, Load: f.load, Metrics: vm.NewSet(), Log: slog.Default()}, parts...)
		if err == nil || !strings.Contains(err.Error(), key+", which is no reloadable key") {
			t.Errorf("New with a part for %s: %v, want an error naming it", key, err)
		}
	}
}

func TestReloadCommitsOnlyChangedParts(t *testing.T) {
	f := newFixture(t, "[log]\naccess_sample = 0\n")
	r := f.reloader(t, nil, "")
	hash := r.Hash()
	f.write(t, "[log]\naccess_sample = 0.5\nlevel = \"warn\"\n")
	if err := r.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if got, want := f.committed(), []string{"log.access_sample", "log.level"}; !slices.Equal(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
	if r.Hash() == hash || f.counter("success") != 1 {
		t.Errorf("hash %s (was %s), successes %d; want a new hash and 1", r.Hash(), hash, f.counter("success"))
	}
	if err := r.Reload("test"); err != nil || len(f.committed()) != 2 {
		t.Errorf("unchanged reload: err %v, committed %v; want no new commit", err, f.committed())
	}
}

func TestFailedPrepareAppliesNothing(t *testing.T) {
	f := newFixture(t, "")
	r := f.reloader(t, nil, "log.level")
	hash := r.Hash()
	f.write(t, "[log]\naccess_sample = 0.5\nlevel = \"warn\"\n")
	if err := r.Reload("test"); err == nil {
		t.Fatal("reload with a failing part succeeded")
	}
	if got := f.committed(); len(got) != 0 {
		t.Errorf("committed %v although one part failed to prepare, want nothing", got)
	}
	if r.Hash() != hash || f.counter("error") != 1 || f.counter("success") != 0 {
		t.Errorf("hash %s (was %s), errors %d, successes %d; want unchanged, 1, 0", r.Hash(), hash, f.counter("error"), f.counter("success"))
	}
	if v := f.gauge("config_last_reload_successful"); v != 0 {
		t.Errorf("config_last_reload_successful %v after a failed reload, want 0", v)
	}
	// The next valid reload applies what the failed one did not.
	f.write(t, "[log]\naccess_sample = 0.5\n")
	if err := r.Reload("test"); err != nil || !slices.Equal(f.committed(), []string{"log.access_sample"}) {
		t.Errorf("reload after the failure: err %v, committed %v; want log.access_sample", err, f.committed())
	}
	if v := f.gauge("config_last_reload_successful"); v != 1 {
		t.Errorf("config_last_reload_successful %v after a good reload, want 1", v)
	}
}

func TestInvalidFileIsCountedAndLogged(t *testing.T) {
	f := newFixture(t, "")
	r := f.reloader(t, nil, "")
	f.write(t, "[log]\nlevel = \"loud\"\n")
	err := r.Reload("test")
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "log.level" || ce.Source != f.path {
		t.Fatalf("reload of an invalid level: %v, want a config error naming log.level and the file", err)
	}
	if f.counter("error") != 1 || len(f.committed()) != 0 {
		t.Errorf("errors %d, committed %v; want 1 and nothing", f.counter("error"), f.committed())
	}
	if want := `"msg":"config reload failed; the running configuration is unchanged","trigger":"test","err":"config: log.level (` + f.path; !strings.Contains(f.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, f.logs.String())
	}
}

// TestWatchDebouncesABurstAndIgnoresOtherFiles writes the config file ten
// times in quick succession and touches an unrelated file in its directory:
// one reload follows.
func TestWatchDebouncesABurstAndIgnoresOtherFiles(t *testing.T) {
	f := newFixture(t, "")
	// Far longer than the 10ms between writes, even on a busy machine.
	f.debounce = 300 * time.Millisecond
	r := f.reloader(t, nil, "")
	r.Start()
	defer r.Stop()
	loadsAtStart := f.loads.Load()
	for i := range 10 {
		f.write(t, "[log]\naccess_sample = 0."+string(rune('0'+i))+"\n")
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(3 * time.Second)
	for f.counter("success") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // room for a second, unwanted reload
	if n := f.loads.Load() - loadsAtStart; n != 1 {
		t.Errorf("%d reloads after a burst of 10 writes, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(f.path), "hotpath.db-wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := f.loads.Load() - loadsAtStart; n != 1 {
		t.Errorf("a write to another file of the directory reloaded: %d reloads, want 1", n)
	}
}

func TestSignalReloads(t *testing.T) {
	f := newFixture(t, "[reload]\nwatch = false\n")
	signals := make(chan os.Signal, 1)
	r := f.reloader(t, signals, "")
	r.Start()
	defer r.Stop()
	f.write(t, "[reload]\nwatch = false\n[log]\nslow = \"1s\"\n")
	signals <- os.Interrupt // any value: the channel carries SIGHUP in hotpath
	deadline := time.Now().Add(3 * time.Second)
	for f.counter("success") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.committed(); !slices.Equal(got, []string{"log.slow"}) {
		t.Errorf("committed %v after the signal, want log.slow", got)
	}
}

func TestRestartKeysAreNamedAndKept(t *testing.T) {
	f := newFixture(t, "")
	r := f.reloader(t, nil, "")
	f.write(t, "[server]\nread_timeout = \"9s\"\n[db]\ntimeout = \"3s\"\n[log]\nlevel = \"debug\"\n")
	if err := r.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if r.running.Server.ReadTimeout != 5*time.Second || r.running.DB.Timeout != 2*time.Second || r.running.Log.Level != "debug" {
		t.Errorf("running read_timeout %s db.timeout %s level %s; want 5s, 2s (restart-only) and debug",
			r.running.Server.ReadTimeout, r.running.DB.Timeout, r.running.Log.Level)
	}
	if want := `"keys":["db.timeout","server.read_timeout"]`; !strings.Contains(f.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, f.logs.String())
	}
}

// TestReloadAppliesSectionKeys: a section's part gets the section's new
// reloadable values with the running values of its other keys, and those
// are named as needing a restart.
func TestReloadAppliesSectionKeys(t *testing.T) {
	f := newFixture(t, "")
	r := f.reloader(t, nil, "")
	hash := r.Hash()
	f.write(t, "[notes]\ntitle = \"New\"\nmax_notes = 5\nexpiry = \"2h\"\n")
	if err := r.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if got := f.committed(); !slices.Equal(got, []string{"notes"}) {
		t.Errorf("committed %v, want the notes part alone", got)
	}
	want := notesConfig{Title: "New", MaxNotes: 5, Expiry: time.Hour, Keep: 30 * time.Minute}
	if len(f.notes) != 1 || f.notes[0] != want {
		t.Errorf("the notes part got %+v, want %+v (expiry keeps its running value)", f.notes, want)
	}
	if got := *r.running.Section("notes").(*notesConfig); got != want {
		t.Errorf("running notes %+v, want %+v", got, want)
	}
	if r.Hash() == hash {
		t.Errorf("hash %s unchanged by a section's reloadable keys", hash)
	}
	for _, want := range []string{`"keys":["notes.expiry"]`, `"changed":["notes.max_notes","notes.title"]`} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, f.logs.String())
		}
	}
	// A change to a key that needs a restart alone prepares no part.
	f.write(t, "[notes]\ntitle = \"New\"\nmax_notes = 5\nexpiry = \"3h\"\n")
	if err := r.Reload("test"); err != nil || len(f.committed()) != 1 {
		t.Errorf("reload of notes.expiry alone: err %v, committed %v; want no new commit", err, f.committed())
	}
}

// TestReloadWithAnInvalidSectionValueAppliesNothing: a section's Validate
// refusing the new values fails the whole reload, framework keys included,
// with one log line naming the key.
func TestReloadWithAnInvalidSectionValueAppliesNothing(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"invalid in the file", "[log]\nlevel = \"debug\"\n[notes]\ntitle = \"New\"\nmax_notes = 0\n",
			"config: notes.max_notes (FILE): must be at least 1"},
		// Valid in the file, but expiry needs a restart, so the reload
		// would run keep = 2h with expiry = 1h.
		{"invalid with the running values", "[log]\nlevel = \"debug\"\n[notes]\nexpiry = \"4h\"\nkeep = \"2h\"\n",
			"config: notes.keep: must not exceed notes.expiry (with the running values of the keys that need a restart)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			r := f.reloader(t, nil, "")
			hash := r.Hash()
			f.write(t, tc.file)
			want := strings.ReplaceAll(tc.want, "FILE", f.path)
			err := r.Reload("test")
			if err == nil || err.Error() != want {
				t.Fatalf("reload: %v, want %s", err, want)
			}
			if got := f.committed(); len(got) != 0 {
				t.Errorf("committed %v, want nothing", got)
			}
			if r.Hash() != hash || r.running.Log.Level != "info" || r.running.Section("notes").(*notesConfig).Title != "Notes" {
				t.Errorf("hash %s (was %s), level %s, title %s; want all unchanged", r.Hash(), hash, r.running.Log.Level, r.running.Section("notes").(*notesConfig).Title)
			}
			if f.counter("error") != 1 || f.counter("success") != 0 {
				t.Errorf("errors %d, successes %d; want 1 and 0", f.counter("error"), f.counter("success"))
			}
			lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], `"err":"`+want+`"`) {
				t.Errorf("log %q, want one line with err %q", lines, want)
			}
		})
	}
}

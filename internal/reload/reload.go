// Package reload applies configuration changes to a running process.
//
// A reload is triggered by SIGHUP or, with reload.watch, by a change to the
// -config file or auth.tokens_file (see watch.go). It loads every source
// again, through the same path and the same validation as start-up, and is
// all or nothing: any error leaves the running configuration whole, logs
// one line naming the key and its source, and counts
// config_reloads_total{result="error"}. A valid configuration is applied in
// two phases: every Part whose keys changed first prepares what it needs
// without touching what runs (this may fail, and then nothing is applied),
// then every prepared Part commits with an atomic swap that cannot fail.
// Keys that need a restart (Spec.RestartKeys) keep their running values,
// and one warning names each of them that changed.
//
// The keys of a program's own sections (config.Section) are reloaded the
// same way: those tagged reload:"true" are applied by a Part for the
// section (SectionPart), in the same all-or-nothing reload as the
// framework's, after the section's Validate has passed on the values the
// reload would apply.
package reload

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/hotpath/hotpath/internal/config"
)

// Part applies some reloadable keys to one running component.
type Part struct {
	// Keys are the reloadable keys (Spec.ReloadableKeys) the part applies;
	// it is prepared when one of them changed.
	Keys []string
	// Prepare checks and builds what next needs without changing anything
	// that runs. next is the configuration the reload applies: new values
	// for the reloadable keys, running ones for the others, sections
	// included (next.Section(name)). The commit it returns swaps that in;
	// it must not fail.
	Prepare func(next config.Config) (commit func(), err error)
}

// SectionPart returns the Part that applies the reloadable keys of sec
// (those tagged reload:"true"). prepare gets what next.Section(sec.Name)
// gives: a pointer to a fresh copy of the section's struct, of the type
// sec.Defaults points to, with the new values of its reloadable keys and
// the running values of the others. Like any Prepare it changes nothing
// that runs and returns the commit that swaps the new values in.
func SectionPart(sec config.Section, prepare func(next any) (commit func(), err error)) Part {
	return Part{
		Keys: sec.ReloadableKeys(),
		Prepare: func(next config.Config) (func(), error) {
			v := next.Section(sec.Name)
			if v == nil {
				return nil, fmt.Errorf("reload: the configuration has no section %s", sec.Name)
			}
			return prepare(v)
		},
	}
}

// Options configure a Reloader.
type Options struct {
	// Spec is the program's (config.Load's): which keys a reload applies.
	Spec config.Spec
	// Load reads the configuration from every source, as start-up does.
	Load func() (config.Config, error)
	// Running is the configuration the process started with.
	Running config.Config
	// ConfigPath is the -config file, watched with Running.Reload.Watch.
	ConfigPath string
	// Signals delivers SIGHUP; each one reloads.
	Signals <-chan os.Signal
	// Debounce is how long the watched files must stay quiet after a change
	// before the reload (default 100ms): an editor's or the kubelet's
	// update is several file operations.
	Debounce time.Duration
	// Metrics receives the reload metrics.
	Metrics *vm.Set
	Log     *slog.Logger
}

// Reloader reloads the configuration on SIGHUP and watched file changes.
type Reloader struct {
	opts  Options
	parts []Part
	log   *slog.Logger

	// mu serialises reloads; it guards running.
	mu      sync.Mutex
	running config.Config
	// hash is running's hash, read by scrapes without waiting for a reload.
	hash atomic.Pointer[string]

	ok, failed  *vm.Counter
	lastSuccess *vm.Gauge
	// lastOK is 1 while the last reload (or start-up) succeeded, 0 after a
	// failed one: what an alert watches.
	lastOK *vm.Gauge

	watch *watcher // nil without reload.watch
	quit  chan struct{}
	done  chan struct{}
	stop  sync.Once
}

// New returns a Reloader for the running configuration and the parts that
// apply its reloadable keys. It fails when a reloadable framework key has
// no part (such a key would be reported as applied while nothing applies
// it) and when a part lists a key no reload applies (it would never be
// prepared). The sections' reloadable keys are not required to have one:
// whatever keeps a section's values for the program registers the part for
// them (SectionPart).
func New(o Options, parts ...Part) (*Reloader, error) {
	reloadable := o.Spec.ReloadableKeys()
	var sectionKeys []string
	for _, sec := range o.Spec.Sections {
		sectionKeys = append(sectionKeys, sec.Keys()...)
	}
	for _, key := range reloadable {
		if slices.Contains(sectionKeys, key) {
			continue
		}
		if !slices.ContainsFunc(parts, func(p Part) bool { return slices.Contains(p.Keys, key) }) {
			return nil, fmt.Errorf("reload: no part applies the reloadable key %s", key)
		}
	}
	for _, p := range parts {
		for _, key := range p.Keys {
			if !slices.Contains(reloadable, key) {
				return nil, fmt.Errorf("reload: a part applies %s, which is no reloadable key", key)
			}
		}
	}
	if o.Debounce <= 0 {
		o.Debounce = 100 * time.Millisecond
	}
	r := &Reloader{
		opts:    o,
		parts:   parts,
		log:     o.Log,
		running: o.Running,
		ok:      o.Metrics.NewCounter(`config_reloads_total{result="success"}`),
		failed:  o.Metrics.NewCounter(`config_reloads_total{result="error"}`),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	r.lastSuccess = o.Metrics.NewGauge("config_last_reload_success_timestamp_seconds", nil)
	r.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9) // the start-up load
	r.lastOK = o.Metrics.NewGauge("config_last_reload_successful", nil)
	r.lastOK.Set(1)
	hash := o.Running.Hash()
	r.hash.Store(&hash)
	// Written at each scrape from the current hash, so a scrape during a
	// reload sees one series, the old or the new.
	o.Metrics.RegisterMetricsWriter(func(w io.Writer) {
		vm.WriteGaugeUint64(w, fmt.Sprintf("hotpath_config_info{hash=%q}", r.Hash()), 1)
	})
	return r, nil
}

// Hash identifies the configuration running now (config.Config.Hash).
func (r *Reloader) Hash() string { return *r.hash.Load() }

// Start watches for SIGHUP and, with reload.watch, for file changes, until
// Stop. A watch that cannot be set up is logged and leaves SIGHUP working.
func (r *Reloader) Start() {
	if r.running.Reload.Watch {
		w, err := newWatcher(r.log)
		if err != nil {
			r.log.Warn("config file watch unavailable; reload with SIGHUP", "err", err)
		} else {
			r.watch = w
			r.watch.set(r.watchedFiles(r.running))
		}
	}
	go r.run()
}

// Stop ends the watch. A reload under way finishes first.
func (r *Reloader) Stop() {
	r.stop.Do(func() {
		close(r.quit)
		<-r.done
		if r.watch != nil {
			r.watch.close()
		}
	})
}

func (r *Reloader) run() {
	defer close(r.done)
	var events <-chan struct{}
	if r.watch != nil {
		events = r.watch.changed
	}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-r.opts.Signals:
			_ = r.Reload("SIGHUP") // logged and counted
		case <-events:
			quiet.Reset(r.opts.Debounce)
		case <-quiet.C:
			_ = r.Reload("file change") // logged and counted
		}
	}
}

// watchedFiles are the files whose changes reload cfg.
func (r *Reloader) watchedFiles(cfg config.Config) []string {
	files := []string{r.opts.ConfigPath}
	if cfg.Auth.TokensFile != "" {
		files = append(files, cfg.Auth.TokensFile)
	}
	return files
}

// Reload loads the configuration again and applies its reloadable keys,
// all or none. trigger names the cause in the log. The error is logged and
// counted already; the running configuration is then unchanged.
func (r *Reloader) Reload(trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := r.opts.Load()
	if err != nil {
		return r.fail(trigger, err)
	}
	applied, changed, restart := r.running.Reloaded(next)
	if err := applied.Validate(); err != nil {
		// A reloadable value that contradicts a running restart-only one.
		return r.fail(trigger, withRunningValues(err))
	}
	var commits []func()
	for _, p := range r.parts {
		if !slices.ContainsFunc(p.Keys, func(k string) bool { return slices.Contains(changed, k) }) {
			continue
		}
		commit, err := p.Prepare(applied)
		if err != nil {
			return r.fail(trigger, err)
		}
		commits = append(commits, commit)
	}
	for _, commit := range commits {
		commit()
	}
	r.running = applied
	hash := applied.Hash()
	r.hash.Store(&hash)
	if r.watch != nil {
		r.watch.set(r.watchedFiles(applied))
	}
	r.ok.Inc()
	r.lastOK.Set(1)
	r.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	if len(restart) > 0 {
		r.log.Warn("config keys changed that need a restart; they keep their running values",
			"keys", restart, "trigger", trigger)
	}
	r.log.Info("config reloaded", "trigger", trigger, "changed", nonNil(changed), "config_hash", hash)
	return nil
}

// fail logs and counts a reload that changed nothing.
func (r *Reloader) fail(trigger string, err error) error {
	r.failed.Inc()
	r.lastOK.Set(0)
	msg := err.Error()
	var ce *config.Error
	if errors.As(err, &ce) {
		msg = ce.Error() // the key and its source, as at start-up
	}
	r.log.Error("config reload failed; the running configuration is unchanged",
		"trigger", trigger, "err", msg, "config_hash", r.Hash())
	return err
}

// withRunningValues says in a validation error that the values checked
// were the reload's mix of new and running ones. A *config.Error stays
// one, its reason extended, so that the logged line keeps the remark.
func withRunningValues(err error) error {
	const remark = " (with the running values of the keys that need a restart)"
	var ce *config.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w%s", err, remark)
	}
	e := *ce
	e.Reason += remark
	return &e
}

// nonNil makes an empty key list log as [] rather than null.
func nonNil(keys []string) []string {
	if keys == nil {
		return []string{}
	}
	return keys
}

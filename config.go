package hotpath

import (
	"fmt"
	"sync/atomic"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/reload"
)

// Setting holds the values of a configuration section of the service's
// own, as loaded at start and swapped whole by each reload that changes a
// reloadable key of it.
type Setting[T any] struct {
	sec config.Section
	v   atomic.Pointer[T]
}

// Section declares a configuration section of the service: the exported
// fields of T, each the key "<name>.<koanf tag>" (such as notes.max_notes
// for `koanf:"max_notes"`), with defaults' values as defaults. Its keys
// are read like hotpath's own, with the same strictness: from config.toml,
// from the environment (NOTES_NOTES__MAX_NOTES for a service "notes"),
// from flags (--notes.max_notes=5); an unknown key or a bad value stops
// start-up with one line naming it. A field tagged `reload:"true"` takes a
// new value at a reload (SIGHUP or a changed file), all keys of a reload
// together or none; the others need a restart. A Validate() error method
// on *T is called after every load; a reload it refuses changes nothing.
// name may also be one of hotpath's sections ("api", "db") to add keys to
// it. Field types: string, bool, int, float64, time.Duration, []string.
func Section[T any](a *App, name string, defaults T) *Setting[T] {
	d := defaults
	s := &Setting[T]{sec: config.Section{Name: name, Defaults: &d}}
	a.sections = append(a.sections, s.sec)
	a.settings = append(a.settings, s)
	return s
}

// Get is the section's values now. It is nil before the App starts; the
// values it points to never change (a reload swaps in new ones), so read
// Get once per use.
func (s *Setting[T]) Get() *T { return s.v.Load() }

// setting is a Setting of any type, as the App starts and reloads it.
type setting interface {
	load(cfg config.Config) error
	part() (reload.Part, bool)
}

func (s *Setting[T]) load(cfg config.Config) error {
	v, ok := cfg.Section(s.sec.Name).(*T)
	if !ok {
		return fmt.Errorf("configuration section %s was not loaded", s.sec.Name)
	}
	s.v.Store(v)
	return nil
}

// part applies the section's reloadable keys, if it has any.
func (s *Setting[T]) part() (reload.Part, bool) {
	if len(s.sec.ReloadableKeys()) == 0 {
		return reload.Part{}, false
	}
	return reload.SectionPart(s.sec, func(next any) (func(), error) {
		v, ok := next.(*T)
		if !ok {
			return nil, fmt.Errorf("configuration section %s holds %T", s.sec.Name, next)
		}
		return func() { s.v.Store(v) }, nil
	}), true
}

// ConfigError is the error a section's Validate method returns for a bad
// value: key is the field's key within the section ("max_notes"), reason
// says what is wanted. Start-up stops with one line naming
// section.key, the source that set it and the reason.
func ConfigError(key, reason string) error { return &config.Error{Key: key, Reason: reason} }

// Key is one configuration key of a service.
type Key struct {
	// Name is section.key ("upstreams" stands for the [upstreams.NAME]
	// tables).
	Name string
	// Reloads reports whether a reload applies it; the others need a
	// restart.
	Reloads bool
}

// Keys lists every configuration key the service reads, hotpath's and its
// sections', in name order: what its config file should document (a test
// can hold the file to it).
func (a *App) Keys() []Key {
	spec := a.program().Spec()
	var out []Key
	for _, k := range spec.Keys() {
		out = append(out, Key{Name: k, Reloads: spec.Reloadable(k)})
	}
	return out
}

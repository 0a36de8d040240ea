package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// reloadableKeys are the framework keys a running process applies when it
// reloads its configuration (SIGHUP, or a watched file changing). Every
// other framework key is in restartKeys and keeps its start-up value until
// the process restarts. A section's keys say which they are with their
// reload tag; Spec.ReloadableKeys and Spec.RestartKeys list both kinds.
//
// To make a framework key reloadable: move it here from restartKeys, give
// the component it configures an atomic swap, and register a reload.Part
// that applies it in cmd/hotpath (the reloader refuses to start while a key
// here has no part).
var reloadableKeys = []string{
	"auth.tokens",
	"auth.tokens_file",
	"limits.anonymous_writes",
	"limits.reads",
	"limits.token_writes",
	"log.access_sample",
	"log.level",
	"log.slow",
	"security.trusted_origins",
	"server.max_inflight",
	"server.trusted_proxies",
	"tracing.sample",
	"webhooks.secret",
	"webhooks.urls",
}

// restartKeys are the framework keys that need a restart: listeners, the
// database, buffers and timeouts fixed when a component starts. "upstreams"
// stands for every key of every [upstreams.NAME] table.
var restartKeys = []string{
	"admin.addr",
	"admin.pprof",
	"api.idempotency_ttl",
	"db.conn_max_idle_time",
	"db.conn_max_lifetime",
	"db.driver",
	"db.dsn",
	"db.max_conns",
	"db.sqlite_synchronous",
	"db.timeout",
	"log.access_buffer",
	"reload.watch",
	"security.csrf_secret",
	"security.secure_cookie",
	"server.addr",
	"server.compress",
	"server.compress_min_size",
	"server.concurrency",
	"server.idle_timeout",
	"server.max_body_size",
	"server.max_conns_per_ip",
	"server.name",
	"server.prefork",
	"server.read_buffer_size",
	"server.read_timeout",
	"server.reuse_port",
	"server.write_timeout",
	"shutdown.drain",
	"shutdown.timeout",
	"tracing.endpoint",
	"tracing.queue",
	"tracing.service_name",
	"tracing.timeout",
	"upstreams",
	"webhooks.concurrency",
	"webhooks.max_attempts",
	"webhooks.retention",
	"webhooks.timeout",
}

// Reloaded compares next, a freshly loaded configuration, with c, the one
// running. It returns the configuration to run from now on: next's values
// for the reloadable keys, c's for the others. changed lists the reloadable
// keys whose values differ (auth.tokens_file also when only the file's
// content did); restart lists the other keys that differ, which keep their
// running values. Both lists are in name order and cover c's sections'
// keys, reloadable when tagged reload:"true". Its sections are new values;
// like every section value, they are never changed in place.
func (c Config) Reloaded(next Config) (applied Config, changed, restart []string) {
	applied = c
	from, to := reflect.ValueOf(next), reflect.ValueOf(&applied).Elem()
	old := reflect.ValueOf(c)
	keys := keysOf(reflect.TypeOf(Config{}))
	for _, name := range (Spec{}).Keys() {
		var differs bool
		if name == "upstreams" {
			differs = !reflect.DeepEqual(c.Upstreams, next.Upstreams)
		} else {
			idx := keys[name].index
			differs = !equalValue(old.FieldByIndex(idx), from.FieldByIndex(idx))
			if slices.Contains(reloadableKeys, name) {
				to.FieldByIndex(idx).Set(from.FieldByIndex(idx))
			}
		}
		if name == "auth.tokens_file" {
			differs = differs || !slices.Equal(c.Auth.FileTokens, next.Auth.FileTokens)
			applied.Auth.FileTokens = next.Auth.FileTokens
		}
		switch {
		case !differs:
		case slices.Contains(reloadableKeys, name):
			changed = append(changed, name)
		default:
			restart = append(restart, name)
		}
	}
	var sectionChanged, sectionRestart []string
	applied.sections, sectionChanged, sectionRestart = reloadedSections(c.sections, next.sections)
	if len(sectionChanged)+len(sectionRestart) > 0 {
		changed, restart = append(changed, sectionChanged...), append(restart, sectionRestart...)
		sort.Strings(changed)
		sort.Strings(restart)
	}
	return applied, changed, restart
}

// reloadedSections does Reloaded's work for the sections: each applied
// section is a new value, running's with next's reloadable keys. A section
// next lacks keeps its running value; one only next has is ignored, as a
// section a reload cannot add.
func reloadedSections(running, next []sectionValue) (applied []sectionValue, changed, restart []string) {
	for _, sv := range running {
		i := slices.IndexFunc(next, func(n sectionValue) bool { return n.name == sv.name && n.value.Type() == sv.value.Type() })
		if i < 0 {
			applied = append(applied, sv)
			continue
		}
		v := cloneSection(sv.value)
		to := next[i].value
		for _, f := range storedFields(sv) {
			if equalValue(sv.value.FieldByIndex(f.index), to.FieldByIndex(f.index)) {
				continue
			}
			if !f.reload {
				restart = append(restart, f.key)
				continue
			}
			changed = append(changed, f.key)
			v.FieldByIndex(f.index).Set(to.FieldByIndex(f.index))
		}
		applied = append(applied, sectionValue{name: sv.name, value: v})
	}
	return applied, changed, restart
}

// equalValue compares two values of one key; an empty list equals a
// missing one.
func equalValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Hash identifies a configuration: the first 12 hex digits of a SHA-256 over
// every key's value (and the tokens read from auth.tokens_file). Two
// processes with the same hash run the same settings. The digest does not
// reveal the secrets it covers.
func (c Config) Hash() string {
	h := sha256.New()
	v := reflect.ValueOf(c)
	keys := keysOf(reflect.TypeOf(Config{}))
	for _, name := range (Spec{}).Keys() {
		if name == "upstreams" {
			continue
		}
		hashValue(h, name, v.FieldByIndex(keys[name].index))
	}
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "upstreams.%s=%#v\n", n, c.Upstreams[n])
	}
	fmt.Fprintf(h, "auth.tokens_file content=%s\n", strings.Join(c.Auth.FileTokens, "\n"))
	// After every framework key, so that a configuration without sections
	// keeps the hash it had before sections existed.
	for _, sv := range c.sections {
		for _, f := range storedFields(sv) {
			hashValue(h, f.key, sv.value.FieldByIndex(f.index))
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// hashValue writes one key's value to the hash h.
func hashValue(h io.Writer, name string, f reflect.Value) {
	if f.Kind() == reflect.Slice { // nil and empty alike
		fmt.Fprintf(h, "%s=%q\n", name, strings.Join(f.Interface().([]string), "\x00"))
		return
	}
	fmt.Fprintf(h, "%s=%#v\n", name, f.Interface())
}

package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/ratelimit"
)

// notesConfig is a section of a service's own: a key of every type keys
// take, reloadable ones and ones that need a restart.
type notesConfig struct {
	Title    string         `koanf:"title" reload:"true"`
	Public   bool           `koanf:"public"`
	MaxNotes int            `koanf:"max_notes" reload:"true"`
	Ratio    float64        `koanf:"ratio" reload:"true"`
	Expiry   time.Duration  `koanf:"expiry"`
	Tags     []string       `koanf:"tags" reload:"true"`
	Writes   ratelimit.Rate `koanf:"writes"`
	// Derived is no key: it keeps its Defaults value.
	Derived string `koanf:"-"`
	cache   int    // unexported: no key either
}

// errTooManyNotes is shared, as a service's sentinel errors are: Load must
// not rewrite it when it names the key.
var errTooManyNotes = &Error{Key: "max_notes", Reason: "must be at most 1000000"}

func (n *notesConfig) Validate() error {
	switch {
	case n.MaxNotes < 1:
		return &Error{Key: "max_notes", Reason: "must be at least 1"}
	case n.MaxNotes > 1_000_000:
		return errTooManyNotes
	case n.Ratio < 0 || n.Ratio > 1:
		return &Error{Key: "ratio", Reason: "must be between 0 and 1"}
	case n.Public && n.Writes.N == 0:
		// Two keys: the one a reload can change is named.
		return &Error{Key: "public", Reason: "a public notes service needs notes.writes"}
	case n.Title == "admin":
		return errors.New("the title admin\nis reserved")
	case n.Title == "server":
		return &Error{Key: "server.name", Reason: "must differ from the notes title"}
	}
	n.cache = 1 // what Validate changes is not kept
	return nil
}

// apiExtra adds a key to the framework's [api] section.
type apiExtra struct {
	NotesCap int `koanf:"notes_cap" reload:"true"`
}

func notesDefaults() notesConfig {
	return notesConfig{
		Title:    "Notes",
		MaxNotes: 10000,
		Ratio:    0.5,
		Expiry:   time.Hour,
		Tags:     []string{"a", "b"},
		Writes:   ratelimit.Rate{N: 10, Per: time.Second},
		Derived:  "kept",
	}
}

// notesSpec is a service named notes with its own section, a key added to
// [api], and its own environment prefix.
func notesSpec() Spec {
	def := notesDefaults()
	return Spec{Program: "notes", EnvPrefix: "NOTES_", Sections: []Section{
		{Name: "notes", Defaults: &def},
		{Name: "api", Defaults: &apiExtra{NotesCap: 7}},
	}}
}

func loadNotes(t *testing.T, file string, env, args []string) (Config, error) {
	t.Helper()
	cfg, _, err := Load(notesSpec(), append([]string{"-config", writeFile(t, file)}, args...), env)
	return cfg, err
}

func notesOf(t *testing.T, cfg Config) notesConfig {
	t.Helper()
	n, ok := cfg.Section("notes").(*notesConfig)
	if !ok {
		t.Fatalf("Section(notes) = %#v, want a *notesConfig", cfg.Section("notes"))
	}
	return *n
}

func TestSectionDefaultsApply(t *testing.T) {
	cfg, err := loadNotes(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := notesOf(t, cfg), notesDefaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("notes section:\n got %+v\nwant %+v", got, want)
	}
	if got := cfg.Section("api").(*apiExtra).NotesCap; got != 7 {
		t.Errorf("api.notes_cap = %d, want the default 7", got)
	}
	if cfg.API.IdempotencyTTL != 24*time.Hour || cfg.Server.Addr != ":8080" {
		t.Errorf("framework keys api.idempotency_ttl %s, server.addr %q; want their defaults", cfg.API.IdempotencyTTL, cfg.Server.Addr)
	}
	if got := cfg.Section("nope"); got != nil {
		t.Errorf("Section(nope) = %#v, want nil", got)
	}
}

// TestSectionPrecedenceFileEnvFlag sets each section key in the file, some
// again in the environment (under the service's prefix) and some of those
// again as flags: the later source wins, key by key.
func TestSectionPrecedenceFileEnvFlag(t *testing.T) {
	file := `
[notes]
title = "file"
public = true
max_notes = 11
ratio = 0.1
expiry = "1m"
tags = ["f1", "f2"]
writes = "1/s"
[api]
notes_cap = 1
idempotency_ttl = "5h"
`
	env := []string{
		"NOTES_NOTES__TITLE=env", "NOTES_NOTES__MAX_NOTES=22", "NOTES_NOTES__EXPIRY=2m",
		"NOTES_NOTES__TAGS=e1, e2", "NOTES_API__NOTES_CAP=2", "NOTES_SERVER__ADDR=:7002",
		"HOTPATH_NOTES__TITLE=another-prefix", "HOTPATH_SERVER__ADDR=:1",
	}
	args := []string{"--notes.title=flag", "--notes.ratio=0.3", "--notes.writes=3/h", "--api.notes_cap=3"}
	cfg, err := loadNotes(t, file, env, args)
	if err != nil {
		t.Fatal(err)
	}
	want := notesConfig{
		Title:    "flag",                               // flag over env over file
		Public:   true,                                 // file
		MaxNotes: 22,                                   // env over file
		Ratio:    0.3,                                  // flag over file
		Expiry:   2 * time.Minute,                      // env over file
		Tags:     []string{"e1", "e2"},                 // comma-separated env over a TOML array
		Writes:   ratelimit.Rate{N: 3, Per: time.Hour}, // flag over file
		Derived:  "kept",                               // no key
	}
	if got := notesOf(t, cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("notes section:\n got %+v\nwant %+v", got, want)
	}
	if got := cfg.Section("api").(*apiExtra).NotesCap; got != 3 {
		t.Errorf("api.notes_cap = %d, want 3 from the flag", got)
	}
	if cfg.API.IdempotencyTTL != 5*time.Hour || cfg.Server.Addr != ":7002" {
		t.Errorf("api.idempotency_ttl %s (want 5h from the file), server.addr %q (want :7002 from NOTES_SERVER__ADDR)", cfg.API.IdempotencyTTL, cfg.Server.Addr)
	}
	// A bare bool flag, as for framework keys.
	cfg, err = loadNotes(t, "[notes]\npublic = false\n", nil, []string{"--notes.public"})
	if err != nil || !notesOf(t, cfg).Public {
		t.Errorf("--notes.public: err %v, public %v; want true", err, notesOf(t, cfg).Public)
	}
}

// TestSectionMistakesNameKeyAndSource: an unknown key or a bad value in a
// section, from any source, stops Load with one line naming the key and
// the source, in the service's own words.
func TestSectionMistakesNameKeyAndSource(t *testing.T) {
	const unknown = "unknown key; see config.toml for the keys notes reads"
	cases := []struct {
		name      string
		file      string
		env, args []string
		want      string // the whole message
	}{
		{name: "unknown key in file", file: "[notes]\nmax_note = 1\n",
			want: "config: notes.max_note (FILE): " + unknown},
		{name: "unknown key in environment", env: []string{"NOTES_NOTES__MAX_NOTE=1"},
			want: "config: notes.max_note (environment NOTES_NOTES__MAX_NOTE): " + unknown},
		{name: "unknown key as a flag", args: []string{"--notes.max_note=1"},
			want: "config: notes.max_note (flag --notes.max_note): " + unknown},
		{name: "unknown key added to a framework section", args: []string{"--api.notes_cop=1"},
			want: "config: api.notes_cop (flag --api.notes_cop): " + unknown},
		{name: "unknown framework key", env: []string{"NOTES_SERVER__ADRR=:1"},
			want: "config: server.adrr (environment NOTES_SERVER__ADRR): " + unknown},
		{name: "variable without a section", env: []string{"NOTES__TITLE=x"},
			want: "config: NOTES__TITLE (environment): names no section or no key; configuration variables look like NOTES_SECTION__KEY"},
		{name: "unknown switch", args: []string{"-confg", "x.toml"},
			want: "config: -confg (command line): unknown flag; notes takes -config PATH, -version and --section.key=value for any key in config.toml"},
		{name: "bad integer in environment", env: []string{"NOTES_NOTES__MAX_NOTES=lots"},
			want: `config: notes.max_notes (environment NOTES_NOTES__MAX_NOTES): invalid value "lots": want an integer`},
		{name: "bad bool in file", file: "[notes]\npublic = \"maybe\"\n",
			want: `config: notes.public (FILE): invalid value "maybe": want true or false`},
		{name: "bad number as a flag", args: []string{"--notes.ratio=half"},
			want: `config: notes.ratio (flag --notes.ratio): invalid value "half": want a number`},
		{name: "bad duration as a flag", args: []string{"--notes.expiry=5"},
			want: `config: notes.expiry (flag --notes.expiry): invalid duration "5": use a Go duration such as "5s" or "250ms"`},
		{name: "bad list in file", file: "[notes]\ntags = [1, 2]\n",
			want: "config: notes.tags (FILE): invalid list element 1: want strings"},
		{name: "bad text value in environment", env: []string{"NOTES_NOTES__WRITES=100"},
			want: "config: notes.writes (environment NOTES_NOTES__WRITES): "},
		{name: "string for a string in file", file: "[notes]\ntitle = 5\n",
			want: "config: notes.title (FILE): invalid value 5: want a string"},
		{name: "bad value in an added key", env: []string{"NOTES_API__NOTES_CAP=many"},
			want: `config: api.notes_cap (environment NOTES_API__NOTES_CAP): invalid value "many": want an integer`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file)
			_, _, err := Load(notesSpec(), append([]string{"-config", path}, tc.args...), tc.env)
			want := strings.ReplaceAll(tc.want, "FILE", path)
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Error(), want) || strings.Contains(ce.Error(), "\n") {
				t.Errorf("file %q env %v args %v:\n got %v\nwant one line starting %q", tc.file, tc.env, tc.args, err, want)
			}
		})
	}
}

func TestSectionValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name      string
		env, args []string
		want      string
	}{
		{name: "key of the section", args: []string{"--notes.max_notes=0"},
			want: "config: notes.max_notes (flag --notes.max_notes): must be at least 1"},
		{name: "shared error", env: []string{"NOTES_NOTES__MAX_NOTES=2000000"},
			want: "config: notes.max_notes (environment NOTES_NOTES__MAX_NOTES): must be at most 1000000"},
		{name: "range from a flag", args: []string{"--notes.ratio=2"},
			want: "config: notes.ratio (flag --notes.ratio): must be between 0 and 1"},
		{name: "key left at its default", args: []string{"--notes.public", "--notes.writes=0"},
			want: "config: notes.public (flag --notes.public): a public notes service needs notes.writes"},
		{name: "plain error names the section", args: []string{"--notes.title=admin"},
			want: "config: notes: the title admin is reserved"},
		{name: "key with a dot is taken as it is", args: []string{"--notes.title=server"},
			want: "config: server.name: must differ from the notes title"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadNotes(t, "", tc.env, tc.args)
			var ce *Error
			if !errors.As(err, &ce) || ce.Error() != tc.want {
				t.Errorf("env %v args %v:\n got %v\nwant %s", tc.env, tc.args, err, tc.want)
			}
		})
	}
	if errTooManyNotes.Key != "max_notes" {
		t.Errorf("Load rewrote the section's shared error: its key is now %q, want max_notes", errTooManyNotes.Key)
	}
	// A valid section runs Validate too, on a copy: what it changes stays out.
	cfg, err := loadNotes(t, "", nil, nil)
	if err != nil || notesOf(t, cfg).cache != 0 {
		t.Errorf("valid section: err %v, cache %d; want no error and 0", err, notesOf(t, cfg).cache)
	}
}

func TestSpecCheckRefusesMalformedSections(t *testing.T) {
	type named string
	type withInt64 struct {
		N int64 `koanf:"n"`
	}
	type withNamed struct {
		S named `koanf:"s"`
	}
	type withMap struct {
		M map[string]string `koanf:"m"`
	}
	type untagged struct {
		Title string
	}
	type badTag struct {
		Title string `koanf:"Title"`
	}
	type doubleUnderscore struct {
		Title string `koanf:"the__title"`
	}
	type badReload struct {
		Title string `koanf:"title" reload:"yes"`
	}
	type twice struct {
		A string `koanf:"a"`
		B string `koanf:"a"`
	}
	type ttl struct {
		TTL time.Duration `koanf:"idempotency_ttl"`
	}
	type addr struct {
		Addr string `koanf:"addr"`
	}
	type ok struct {
		Title string `koanf:"title"`
	}
	good := func(secs ...Section) Spec { return Spec{Program: "notes", EnvPrefix: "NOTES_", Sections: secs} }
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"collision with a framework key", good(Section{"api", &ttl{}}), "key api.idempotency_ttl already exists"},
		{"collision with a framework key of another section", good(Section{"server", &addr{}}), "key server.addr already exists"},
		{"collision between sections", good(Section{"notes", &ok{}}, Section{"notes", &ok{}}), "section notes is declared twice"},
		{"int64", good(Section{"notes", &withInt64{}}), "type int64 is none a key takes"},
		{"named string", good(Section{"notes", &withNamed{}}), "is none a key takes"},
		{"map", good(Section{"notes", &withMap{}}), "type map[string]string is none a key takes"},
		{"no koanf tag", good(Section{"notes", &untagged{}}), "field Title has no koanf tag"},
		{"upper-case tag", good(Section{"notes", &badTag{}}), `key "Title"`},
		{"double underscore in a tag", good(Section{"notes", &doubleUnderscore{}}), `key "the__title"`},
		{"reload tag", good(Section{"notes", &badReload{}}), `reload tag "yes"`},
		{"key twice", good(Section{"notes", &twice{}}), "notes.a is declared twice"},
		{"defaults not a pointer", good(Section{"notes", ok{}}), "Defaults is config.ok, want a pointer to a struct"},
		{"nil defaults", good(Section{"notes", (*ok)(nil)}), "want a pointer to a struct"},
		{"no defaults", good(Section{"notes", nil}), "want a pointer to a struct"},
		{"bad section name", good(Section{"Notes", &ok{}}), `section name "Notes"`},
		{"section name ending in an underscore", good(Section{"notes_", &ok{}}), `section name "notes_"`},
		{"upstreams", good(Section{"upstreams", &ok{}}), "taken by the [upstreams.NAME] tables"},
		{"no program", Spec{EnvPrefix: "NOTES_"}, "Spec.Program is empty"},
		{"no prefix", Spec{Program: "notes"}, `Spec.EnvPrefix ""`},
		{"prefix without its underscore", Spec{Program: "notes", EnvPrefix: "NOTES"}, `Spec.EnvPrefix "NOTES"`},
		{"lower-case prefix", Spec{Program: "notes", EnvPrefix: "notes_"}, `Spec.EnvPrefix "notes_"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("Check() = %v, want an error containing %q", err, tc.want)
			}
			if _, _, lerr := Load(tc.spec, []string{"-config", writeFile(t, "")}, nil); lerr == nil || lerr.Error() != err.Error() {
				t.Errorf("Load = %v, want Check's error %v", lerr, err)
			}
		})
	}
	for _, s := range []Spec{hotpathSpec, notesSpec(), good(Section{"db", &ok{}}), good(Section{"notes", &struct{}{}})} {
		if err := s.Check(); err != nil {
			t.Errorf("Check(%+v) = %v, want nil", s, err)
		}
	}
}

func TestSpecListsSectionKeys(t *testing.T) {
	spec := notesSpec()
	keys := spec.Keys()
	for _, k := range []string{"api.idempotency_ttl", "api.notes_cap", "notes.expiry", "notes.title", "server.addr", "upstreams"} {
		if !slices.Contains(keys, k) {
			t.Errorf("Keys() lacks %s: %v", k, keys)
		}
	}
	if slices.Contains(keys, "notes.derived") || slices.Contains(keys, "notes.cache") || !slices.IsSorted(keys) {
		t.Errorf("Keys() = %v, want sorted keys without the fields that are none", keys)
	}
	if got, want := len(keys), len(hotpathSpec.Keys())+8; got != want {
		t.Errorf("%d keys, want %d: the framework's and 8 of the sections", got, want)
	}
	reloadable, restart := spec.ReloadableKeys(), spec.RestartKeys()
	for _, k := range keys {
		if r, s := slices.Contains(reloadable, k), slices.Contains(restart, k); r == s || r != spec.Reloadable(k) {
			t.Errorf("%s: in ReloadableKeys %v, in RestartKeys %v, Reloadable %v; want exactly one list, and Reloadable to agree", k, r, s, spec.Reloadable(k))
		}
	}
	if got := len(reloadable) + len(restart); got != len(keys) {
		t.Errorf("%d keys in the two lists, want %d", got, len(keys))
	}
	for k, want := range map[string]bool{"notes.title": true, "notes.tags": true, "api.notes_cap": true, "notes.expiry": false, "notes.writes": false, "log.level": true, "server.addr": false} {
		if got := spec.Reloadable(k); got != want {
			t.Errorf("Reloadable(%s) = %v, want %v", k, got, want)
		}
	}
	if got, want := spec.Sections[0].ReloadableKeys(), []string{"notes.max_notes", "notes.ratio", "notes.tags", "notes.title"}; !slices.Equal(got, want) {
		t.Errorf("notes ReloadableKeys() = %v, want %v", got, want)
	}
	if got, want := spec.Sections[1].Keys(), []string{"api.notes_cap"}; !slices.Equal(got, want) {
		t.Errorf("api section Keys() = %v, want %v", got, want)
	}
}

// TestSectionReloadedTakesReloadableKeys: a reload applies the section keys
// tagged reload:"true" and reports the others as needing a restart, with
// the framework's in one sorted list.
func TestSectionReloadedTakesReloadableKeys(t *testing.T) {
	running, err := loadNotes(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := loadNotes(t, "[notes]\ntitle = \"New\"\ntags = [\"x\"]\nexpiry = \"2h\"\nwrites = \"5/m\"\n[api]\nnotes_cap = 9\n[log]\nlevel = \"debug\"\n[server]\naddr = \":7777\"\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, changed, restart := running.Reloaded(next)
	if want := []string{"api.notes_cap", "log.level", "notes.tags", "notes.title"}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v, want %v", changed, want)
	}
	if want := []string{"notes.expiry", "notes.writes", "server.addr"}; !slices.Equal(restart, want) {
		t.Errorf("restart = %v, want %v", restart, want)
	}
	want := notesDefaults()
	want.Title, want.Tags = "New", []string{"x"}
	if got := notesOf(t, applied); !reflect.DeepEqual(got, want) {
		t.Errorf("applied notes:\n got %+v\nwant %+v (new reloadable keys, running expiry and writes)", got, want)
	}
	if got := applied.Section("api").(*apiExtra).NotesCap; got != 9 {
		t.Errorf("applied api.notes_cap = %d, want 9", got)
	}
	if got := notesOf(t, running); !reflect.DeepEqual(got, notesDefaults()) {
		t.Errorf("running notes changed by Reloaded: %+v", got)
	}
	if _, changed, restart := running.Reloaded(running); changed != nil || restart != nil {
		t.Errorf("identical configuration: changed %v restart %v, want none", changed, restart)
	}
}

// TestSectionValuesAreNotShared: what a caller does to a section's copy
// reaches no Config, whether running, next or applied.
func TestSectionValuesAreNotShared(t *testing.T) {
	running, err := loadNotes(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := loadNotes(t, "[notes]\ntags = [\"n1\", \"n2\"]\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied, _, _ := running.Reloaded(next)
	copies := running
	for _, cfg := range []Config{running, next, applied, copies} {
		n := cfg.Section("notes").(*notesConfig)
		n.Tags[0], n.MaxNotes, n.Title = "changed", -1, "changed"
	}
	if got := notesOf(t, running); !reflect.DeepEqual(got, notesDefaults()) {
		t.Errorf("running notes %+v after changing copies, want the defaults", got)
	}
	for name, cfg := range map[string]Config{"next": next, "applied": applied} {
		if got := notesOf(t, cfg); !slices.Equal(got.Tags, []string{"n1", "n2"}) || got.Title != "Notes" || got.MaxNotes != 10000 {
			t.Errorf("%s notes %+v after changing copies, want tags n1, n2 and the default title and max_notes", name, got)
		}
	}
	if err := applied.Validate(); err != nil {
		t.Errorf("applied.Validate() = %v after changing copies, want nil", err)
	}
}

func TestSectionHashFollowsValues(t *testing.T) {
	a, err := loadNotes(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadNotes(t, "[notes]\ntags = []\n", nil, []string{"--notes.tags=a,b"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("hashes %s and %s of equal configurations differ", a.Hash(), b.Hash())
	}
	for _, arg := range []string{"--notes.title=x", "--notes.expiry=2h", "--notes.writes=1/h", "--notes.tags=a", "--api.notes_cap=8", "--notes.public=true"} {
		c, err := loadNotes(t, "", nil, []string{arg})
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash() == a.Hash() {
			t.Errorf("%s: hash %s unchanged", arg, c.Hash())
		}
	}
	// Without sections the hash is what it was before sections existed.
	plain, _, err := Load(hotpathSpec, []string{"-config", writeFile(t, "")}, nil)
	if err != nil || plain.Hash() != Default().Hash() || plain.Hash() == a.Hash() {
		t.Errorf("framework-only hash %s (err %v), Default's %s, with sections %s; want the first two equal, the third not", plain.Hash(), err, Default().Hash(), a.Hash())
	}
}

// TestServiceNameGivesItsDefaults: a service is its own Server header and
// its own SQLite file unless told otherwise.
func TestServiceNameGivesItsDefaults(t *testing.T) {
	cfg, err := loadNotes(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Name != "notes" || cfg.DB.DSN != "data/notes.db" || cfg.Tracing.ServiceName != "" {
		t.Errorf("server.name %q, db.dsn %q, tracing.service_name %q; want notes, data/notes.db and empty (server.name)", cfg.Server.Name, cfg.DB.DSN, cfg.Tracing.ServiceName)
	}
	cfg, err = loadNotes(t, "[server]\nname = \"notes-eu\"\n", nil, nil)
	if err != nil || cfg.Server.Name != "notes-eu" {
		t.Errorf("server.name from the file: %q (%v)", cfg.Server.Name, err)
	}
}

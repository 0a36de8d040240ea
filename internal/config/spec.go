package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Spec is everything Load needs to know about the program besides the
// framework keys: its name in messages, its environment prefix and the
// configuration sections it declares.
type Spec struct {
	// Program names the program in messages: "see config.toml for the keys
	// hotpath reads".
	Program string
	// EnvPrefix starts every environment variable read as configuration:
	// with "HOTPATH_", HOTPATH_SERVER__ADDR sets server.addr.
	EnvPrefix string
	// Sections are the program's own parts of the configuration.
	Sections []Section
}

// Section is a service's part of the configuration: the exported fields of
// the struct Defaults points to, each a key "<Name>.<koanf tag>" whose
// default is the field's value. Name may be a new section ("notes") or a
// framework one ("api", "db"), adding keys to it; a key that already exists
// is an error. Fields take the types framework keys take: string, bool,
// int, float64, time.Duration, []string, and struct types whose pointer is
// an encoding.TextUnmarshaler (such as ratelimit.Rate). A field tagged
// reload:"true" is applied by a reload; the others need a restart. A field
// tagged koanf:"-" is no key and keeps its Defaults value.
//
// If *T has a method Validate() error, Load calls it on a copy after
// decoding, at start-up and at every reload, and a reload calls it again on
// the values it would apply (running values for the keys that need a
// restart, new ones for the others). A *Error it returns with a Key
// without a dot is taken as a key of the section ("max_notes" for
// "notes.max_notes"); any other error is reported against the section's
// name. What Validate changes in its receiver is not kept.
type Section struct {
	// Name is the section's TOML table, the first part of its keys.
	Name string
	// Defaults points to a struct: its fields are the keys, their values
	// the defaults. Load reads it at every call and never writes it.
	Defaults any
}

// Check reports whether s is well formed: a program name, an environment
// prefix such as "HOTPATH_", and sections whose names, tags and field types
// Load can read, with no key declared twice (by two sections, or by a
// section and the framework).
func (s Spec) Check() error {
	_, _, err := s.checked()
	return err
}

// checked is Check returning the layout it checked, which Load reads.
func (s Spec) checked() (map[string]key, []sectionType, error) {
	if s.Program == "" {
		return nil, nil, errors.New("config: Spec.Program is empty: it names the program in messages")
	}
	if !validPrefix(s.EnvPrefix) {
		return nil, nil, fmt.Errorf("config: Spec.EnvPrefix %q: want upper-case letters, digits and single underscores, ending in one, such as \"HOTPATH_\"", s.EnvPrefix)
	}
	return s.layout()
}

// Keys lists every configuration key, the framework's and the sections',
// in name order, with "upstreams" standing for the [upstreams.NAME] tables.
func (s Spec) Keys() []string {
	keys, _, _ := s.layout() // a field Check refuses is left out
	out := make([]string, 0, len(keys)+1)
	for name := range keys {
		out = append(out, name)
	}
	out = append(out, "upstreams")
	sort.Strings(out)
	return out
}

// Reloadable reports whether a reload applies key: one of the framework's
// reloadable keys, or a section key tagged reload:"true".
func (s Spec) Reloadable(key string) bool {
	return slices.Contains(s.ReloadableKeys(), key)
}

// ReloadableKeys lists in name order the keys a running process applies
// when it reloads: the framework's (reloadableKeys) and the sections' keys
// tagged reload:"true". Every other key needs a restart.
func (s Spec) ReloadableKeys() []string {
	out := slices.Clone(reloadableKeys)
	for _, sec := range s.Sections {
		out = append(out, sec.ReloadableKeys()...)
	}
	sort.Strings(out)
	return out
}

// RestartKeys lists in name order the keys that keep their start-up values
// until the process restarts: the framework's (restartKeys, "upstreams"
// among them) and the sections' keys without reload:"true".
func (s Spec) RestartKeys() []string {
	out := slices.Clone(restartKeys)
	for _, sec := range s.Sections {
		fields, _ := sec.fields()
		for _, f := range fields {
			if !f.reload {
				out = append(out, f.key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Keys lists the keys the section declares, in name order.
func (sec Section) Keys() []string {
	fields, _ := sec.fields()
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		out = append(out, f.key)
	}
	return out
}

// ReloadableKeys lists the section's keys tagged reload:"true", in name
// order: what a reload.Part applying the section lists as its Keys.
func (sec Section) ReloadableKeys() []string {
	fields, _ := sec.fields()
	var out []string
	for _, f := range fields {
		if f.reload {
			out = append(out, f.key)
		}
	}
	return out
}

// Section returns a pointer to a fresh copy of the decoded value of the
// section name (the type Defaults points to), or nil when the
// configuration has no such section. The copy is the caller's: changing it
// changes no Config.
func (c Config) Section(name string) any {
	for _, sv := range c.sections {
		if sv.name == name {
			return cloneSection(sv.value).Addr().Interface()
		}
	}
	return nil
}

// sectionValue is one section's decoded struct value. A Config never
// changes one in place once Load has built it: Reloaded builds new ones,
// and Section hands out copies, so copies of a Config may share them.
type sectionValue struct {
	name  string
	value reflect.Value // the struct
}

// sectionField is one key of a section and where its value lives in the
// section's struct.
type sectionField struct {
	key    string // name.tag
	index  []int
	typ    reflect.Type
	reload bool
}

// fields reads the section's keys from its struct type, in name order. It
// returns the fields it could read and the first problem found.
func (sec Section) fields() ([]sectionField, error) {
	if !validName(sec.Name) {
		return nil, fmt.Errorf("config: section name %q: want 1..64 of a-z, 0-9 and single underscores, starting with a letter and not ending with an underscore, since it appears in environment variable names", sec.Name)
	}
	if sec.Name == "upstreams" {
		return nil, errors.New("config: section name upstreams is taken by the [upstreams.NAME] tables")
	}
	p := reflect.ValueOf(sec.Defaults)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: section %s: Defaults is %T, want a pointer to a struct", sec.Name, sec.Defaults)
	}
	return structFields(sec.Name, p.Elem().Type())
}

// structFields reads the keys of a section's struct type t.
func structFields(name string, t reflect.Type) ([]sectionField, error) {
	var out []sectionField
	var first error
	fail := func(err error) {
		if first == nil {
			first = err
		}
	}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if !f.IsExported() || tag == "-" {
			continue
		}
		where := fmt.Sprintf("config: section %s: field %s", name, f.Name)
		switch {
		case tag == "":
			fail(fmt.Errorf("%s has no koanf tag: tag it with its key, such as `koanf:\"max_items\"`", where))
			continue
		case !validName(tag):
			fail(fmt.Errorf("%s: key %q: want a-z, 0-9 and single underscores, starting with a letter and not ending with an underscore", where, tag))
			continue
		case seen[tag]:
			fail(fmt.Errorf("%s: key %s.%s is declared twice in the section", where, name, tag))
			continue
		case !supportedType(f.Type):
			fail(fmt.Errorf("%s: type %s is none a key takes: string, bool, int, float64, time.Duration, []string or a struct whose pointer is an encoding.TextUnmarshaler", where, f.Type))
			continue
		}
		reload, ok := f.Tag.Lookup("reload")
		if ok && reload != "true" && reload != "false" {
			fail(fmt.Errorf("%s: reload tag %q: want reload:\"true\" or none", where, reload))
			continue
		}
		seen[tag] = true
		out = append(out, sectionField{key: name + "." + tag, index: f.Index, typ: f.Type, reload: reload == "true"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, first
}

var stringListType = reflect.TypeOf([]string(nil))

// supportedType reports whether a key of type t can be read from every
// source: the types convert handles, and no named variants of them, whose
// defaults convert could not take back.
func supportedType(t reflect.Type) bool {
	switch t {
	case reflect.TypeOf(""), reflect.TypeOf(false), reflect.TypeOf(0), reflect.TypeOf(0.0),
		reflect.TypeOf(time.Duration(0)), stringListType:
		return true
	}
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshaler)
}

// layout lists every key of the spec, the framework's and the sections',
// and where its value lives, with the sections in name order. It returns
// what it could read and the first problem found.
func (s Spec) layout() (map[string]key, []sectionType, error) {
	keys := keysOf(reflect.TypeOf(Config{}))
	var sections []sectionType
	var first error
	for _, sec := range s.Sections {
		fields, err := sec.fields()
		if err == nil && slices.ContainsFunc(sections, func(st sectionType) bool { return st.name == sec.Name }) {
			err = fmt.Errorf("config: section %s is declared twice", sec.Name)
			fields = nil
		}
		var kept []sectionField
		for _, f := range fields {
			if _, taken := keys[f.key]; taken {
				if err == nil {
					err = fmt.Errorf("config: section %s: key %s already exists", sec.Name, f.key)
				}
				continue
			}
			keys[f.key] = key{name: f.key, section: sec.Name, index: f.index, typ: f.typ}
			kept = append(kept, f)
		}
		if first == nil {
			first = err
		}
		if fields == nil && err != nil {
			continue
		}
		sections = append(sections, sectionType{name: sec.Name, defaults: reflect.ValueOf(sec.Defaults).Elem(), fields: kept})
	}
	sort.Slice(sections, func(i, j int) bool { return sections[i].name < sections[j].name })
	return keys, sections, first
}

// sectionType is one section as Load reads it.
type sectionType struct {
	name     string
	defaults reflect.Value // the struct Defaults points to
	fields   []sectionField
}

// storedFields reads the keys of a decoded section value; Load has checked
// its type, so nothing can be wrong with it.
func storedFields(sv sectionValue) []sectionField {
	fields, _ := structFields(sv.name, sv.value.Type())
	return fields
}

// cloneSection returns an addressable copy of a section's struct value,
// with lists of its own, so that nothing done to the copy reaches v.
func cloneSection(v reflect.Value) reflect.Value {
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	for i := 0; i < c.NumField(); i++ {
		f := c.Field(i)
		if f.Type() == stringListType && f.CanSet() && !f.IsNil() {
			f.Set(reflect.ValueOf(slices.Clone(f.Interface().([]string))))
		}
	}
	return c
}

// validator is what a section's struct pointer implements to check its
// values beyond their types.
type validator interface {
	Validate() error
}

// validateSections runs each section's Validate, in name order, on a copy.
func (c *Config) validateSections() error {
	for _, sv := range c.sections {
		v, ok := cloneSection(sv.value).Addr().Interface().(validator)
		if !ok {
			continue
		}
		if err := v.Validate(); err != nil {
			return sectionError(sv.name, err)
		}
	}
	return nil
}

// sectionError names the key of a section's Validate error: a *Error's key
// without a dot is one of the section's, any other error is the section's
// as a whole. The *Error is copied, since Validate may return a shared one.
func sectionError(name string, err error) error {
	var ce *Error
	if !errors.As(err, &ce) {
		return &Error{Key: name, Reason: oneLine(err)}
	}
	e := *ce
	if e.Key == "" {
		e.Key = name
	} else if !strings.Contains(e.Key, ".") {
		e.Key = name + "." + e.Key
	}
	return &e
}

// validName: section names and keys appear in environment variable names,
// where __ separates them, so they hold no double underscore and do not
// end with one.
func validName(n string) bool {
	if n == "" || len(n) > 64 || n[0] < 'a' || n[0] > 'z' || strings.Contains(n, "__") || strings.HasSuffix(n, "_") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// validPrefix: an environment prefix such as HOTPATH_, which a section
// name follows directly.
func validPrefix(p string) bool {
	if len(p) < 2 || p[0] < 'A' || p[0] > 'Z' || !strings.HasSuffix(p, "_") || strings.Contains(p, "__") {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Error is a configuration mistake: it names the key and the reason. The
// process stops with exit status 2 on it.
type Error struct {
	Key    string
	Source string
	Reason string
}

func (e *Error) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("config: %s (%s): %s", printable(e.Key), printable(e.Source), printable(e.Reason))
	}
	return fmt.Sprintf("config: %s: %s", printable(e.Key), printable(e.Reason))
}

// printable quotes s when it holds anything but printable characters, so a
// key taken from a hostile environment variable cannot split the one-line
// start-up message.
func printable(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// DefaultPath is the TOML file read when -config names none.
const DefaultPath = "config.toml"

// Options are the command-line switches that are not configuration keys.
type Options struct {
	// Path is the TOML file given with -config.
	Path string
	// Version asks to print the version and exit.
	Version bool
}

// Load builds the configuration of the framework keys and of spec's
// sections from, lowest precedence first, the defaults in code (Default()
// and each Section's Defaults), the TOML file named by -config (default
// config.toml; a missing default file is fine, a missing named file is
// not), the environment variables in environ that start with
// spec.EnvPrefix, and the --section.key flags in args. Every mistake in
// the sources comes back as an *Error, except flag.ErrHelp for -h; a spec
// that fails Check comes back as its error.
func Load(spec Spec, args, environ []string) (Config, Options, error) {
	keys, sections, err := spec.checked()
	if err != nil {
		return Config{}, Options{}, err
	}
	opts, flagValues, err := parseFlags(spec.Program, args, keys)
	if err != nil {
		return Config{}, opts, err
	}
	if opts.Version {
		return Config{}, opts, nil
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaultMap(spec.Program, keys, sections), "."), nil); err != nil {
		return Config{}, opts, fmt.Errorf("config: load defaults: %w", err)
	}

	from := map[string]string{} // key -> the source that set its value last
	path := opts.Path
	explicit := path != ""
	if !explicit {
		path = DefaultPath
	}
	if _, statErr := os.Stat(path); statErr == nil || explicit {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), toml.Parser()); err != nil {
			return Config{}, opts, fileError(path, err)
		}
		if err := merge(spec.Program, k, fk, keys, func(key string) string { return path }, from); err != nil {
			return Config{}, opts, err
		}
	}

	if err := checkEnvNames(spec.EnvPrefix, environ); err != nil {
		return Config{}, opts, err
	}
	ek := koanf.New(".")
	err = ek.Load(env.Provider(".", env.Opt{
		Prefix:        spec.EnvPrefix,
		TransformFunc: func(name, value string) (string, any) { return envKey(spec.EnvPrefix, name, value) },
		EnvironFunc:   func() []string { return environ },
	}), nil)
	if err != nil {
		return Config{}, opts, fmt.Errorf("config: read environment: %w", err)
	}
	envSource := func(key string) string { return envSource(spec.EnvPrefix, key) }
	if err := merge(spec.Program, k, ek, keys, envSource, from); err != nil {
		return Config{}, opts, err
	}

	fl := koanf.New(".")
	if err := fl.Load(confmap.Provider(flagValues, "."), nil); err != nil {
		return Config{}, opts, fmt.Errorf("config: read flags: %w", err)
	}
	if err := merge(spec.Program, k, fl, keys, func(key string) string { return "flag --" + key }, from); err != nil {
		return Config{}, opts, err
	}

	var cfg Config
	if err := decode(k, keys, sections, &cfg); err != nil {
		return Config{}, opts, withSource(err, from)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, opts, withSource(err, from)
	}
	if err := cfg.readTokensFile(); err != nil {
		return Config{}, opts, withSource(err, from)
	}
	return cfg, opts, nil
}

// fileError names the file of a config file that cannot be read and, for a
// TOML syntax error, the line and column: path:line:column, as compilers do.
func fileError(path string, err error) error {
	var pos interface{ Position() (row, column int) } // go-toml's *DecodeError
	if errors.As(err, &pos) {
		row, col := pos.Position()
		reason := strings.TrimPrefix(oneLine(err), "toml: ")
		return &Error{Key: "-config", Source: fmt.Sprintf("%s:%d:%d", path, row, col), Reason: "TOML syntax error: " + reason}
	}
	return &Error{Key: "-config", Source: path, Reason: oneLine(err)}
}

// withSource names in a bad value's error the source that set the value,
// which decoding and validation, working on the merged result, do not know.
func withSource(err error, from map[string]string) error {
	var e *Error
	if errors.As(err, &e) && e.Source == "" {
		e.Source = from[e.Key]
	}
	return err
}

// key is one configuration key and where its value lives: in Config, or
// in the struct of the section named section.
type key struct {
	name    string
	section string // "" for a framework key
	index   []int
	typ     reflect.Type
}

// keysOf lists every leaf key of the config struct type, section.key.
// Map sections, whose tables users name ([upstreams.NAME]), have no fixed
// keys; upstreamKey checks theirs.
func keysOf(t reflect.Type) map[string]key {
	out := map[string]key{}
	for i := 0; i < t.NumField(); i++ {
		sec := t.Field(i)
		if sec.Type.Kind() == reflect.Map || !sec.IsExported() {
			continue // the upstream tables, the sections' values
		}
		for j := 0; j < sec.Type.NumField(); j++ {
			f := sec.Type.Field(j)
			if f.Tag.Get("koanf") == "-" {
				continue // filled in by Load, not set by any source
			}
			name := sec.Tag.Get("koanf") + "." + f.Tag.Get("koanf")
			out[name] = key{name: name, index: []int{i, j}, typ: f.Type}
		}
	}
	return out
}

// upstreamFields are the keys of one [upstreams.NAME] table.
var upstreamFields = func() map[string]key {
	t := reflect.TypeOf(Upstream{})
	out := map[string]key{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		out[f.Tag.Get("koanf")] = key{name: f.Tag.Get("koanf"), index: []int{i}, typ: f.Type}
	}
	return out
}()

// upstreamKey splits upstreams.NAME.KEY. It reports false for any other
// key; for an upstream key with a bad name or an unknown field it returns
// the reason.
func upstreamKey(name string) (upstream, field, reason string, ok bool) {
	rest, ok := strings.CutPrefix(name, "upstreams.")
	if !ok {
		return "", "", "", false
	}
	upstream, field, _ = strings.Cut(rest, ".")
	if !validUpstreamName(upstream) {
		return upstream, field, "upstream names are 1..64 of a-z, 0-9, _ and -, since they appear in metric labels and environment variable names", true
	}
	if _, known := upstreamFields[field]; !known {
		return upstream, field, "unknown key; an [upstreams.NAME] table takes url, timeout, max_conns, retries, breaker_failures and breaker_cooldown", true
	}
	return upstream, field, "", true
}

func validUpstreamName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// defaultMap renders Default() and the sections' Defaults as the lowest
// configuration layer. A service's name is its default server.name (the
// Server header) and names its default SQLite file, data/NAME.db; the
// reference service's, hotpath, gives Default()'s own.
func defaultMap(program string, keys map[string]key, sections []sectionType) map[string]any {
	d := Default()
	d.Server.Name = program
	d.DB.DSN = "data/" + program + ".db"
	def := reflect.ValueOf(d)
	m := make(map[string]any, len(keys))
	for name, kk := range keys {
		if kk.section == "" {
			m[name] = def.FieldByIndex(kk.index).Interface()
		}
	}
	for _, st := range sections {
		for _, f := range st.fields {
			m[f.key] = st.defaults.FieldByIndex(f.index).Interface()
		}
	}
	return m
}

// merge checks that every key of one layer is known, then lays it over k,
// noting in from which source each key's value now comes from.
func merge(program string, k, layer *koanf.Koanf, keys map[string]key, source func(string) string, from map[string]string) error {
	names := layer.Keys()
	sort.Strings(names)
	for _, name := range names {
		from[name] = source(name)
		if _, ok := keys[name]; ok {
			continue
		}
		if _, _, reason, ok := upstreamKey(name); ok {
			if reason != "" {
				return &Error{Key: name, Source: source(name), Reason: reason}
			}
			continue
		}
		return &Error{Key: name, Source: source(name), Reason: reasonUnknownKey(program)}
	}
	return k.Merge(layer)
}

// reasonUnknownKey is the one wording for a key the program does not read,
// whichever source (file, environment, flag) named it.
func reasonUnknownKey(program string) string {
	return "unknown key; see config.toml for the keys " + program + " reads"
}

// envKey maps, with the prefix HOTPATH_, HOTPATH_SERVER__READ_TIMEOUT to
// server.read_timeout and HOTPATH_UPSTREAMS__NAME__URL to
// upstreams.name.url. Variables without the section separator (such as
// HOTPATH_TEST_POSTGRES_DSN) are not configuration and are ignored.
func envKey(prefix, name, value string) (string, any) {
	rest := strings.TrimPrefix(name, prefix)
	section, k, ok := strings.Cut(rest, "__")
	if !ok || section == "" || k == "" {
		return "", nil
	}
	return strings.ToLower(section) + "." + strings.ReplaceAll(strings.ToLower(k), "__", "."), value
}

// checkEnvNames refuses a variable of the prefix (HOTPATH_) that holds the
// section separator but no section or no key (HOTPATH__ADDR,
// HOTPATH_SERVER__): it was meant as configuration, and ignoring it would
// hide the mistake.
func checkEnvNames(prefix string, environ []string) error {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !strings.Contains("_"+rest, "__") {
			continue // not configuration, such as HOTPATH_TEST_POSTGRES_DSN
		}
		if section, key, _ := strings.Cut(rest, "__"); section == "" || key == "" || strings.HasPrefix(section, "_") {
			return &Error{Key: name, Source: "environment", Reason: "names no section or no key; configuration variables look like " + prefix + "SECTION__KEY"}
		}
	}
	return nil
}

func envSource(prefix, key string) string {
	return "environment " + prefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// parseFlags reads -config, -version and one --section.key flag per key.
// Only flags given on the command line are returned as values.
func parseFlags(program string, args []string, keys map[string]key) (Options, map[string]any, error) {
	var opts Options
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&opts.Path, "config", "", "TOML configuration file (default config.toml)")
	fs.BoolVar(&opts.Version, "version", false, "print the version and exit")
	values := map[string]any{}
	for name, kk := range keys {
		fs.Var(&flagValue{name: name, isBool: kk.typ.Kind() == reflect.Bool, into: values}, name, "sets "+name)
	}
	// Upstream names are the user's, so their flags cannot be known in
	// advance: define one for each --upstreams.NAME.KEY given; merge then
	// checks it like a key from any other source.
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && strings.HasPrefix(name, "upstreams.") && fs.Lookup(name) == nil {
			fs.Var(&flagValue{name: name, into: values}, name, "sets "+name)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return opts, nil, err
		}
		return opts, nil, flagError(program, err)
	}
	if fs.NArg() > 0 {
		return opts, nil, &Error{Key: fs.Arg(0), Source: "command line", Reason: "unexpected argument; flags look like --server.addr=:8081"}
	}
	return opts, values, nil
}

// flagError rewords the flag package's errors in the words the other
// sources use, so a typo reads the same on the command line as in the
// environment.
func flagError(program string, err error) error {
	msg := err.Error()
	name := "flag"
	if i := strings.Index(msg, "-"); i >= 0 {
		name = strings.TrimLeft(strings.Fields(msg[i:])[0], "-:")
	}
	isKey := strings.Contains(name, ".")
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined") && isKey:
		return &Error{Key: name, Source: "flag --" + name, Reason: reasonUnknownKey(program)}
	case strings.HasPrefix(msg, "flag provided but not defined"):
		return &Error{Key: "-" + name, Source: "command line", Reason: "unknown flag; " + program + " takes -config PATH, -version and --section.key=value for any key in config.toml"}
	case strings.HasPrefix(msg, "flag needs an argument") && isKey:
		return &Error{Key: name, Source: "flag --" + name, Reason: "needs a value: --" + name + "=VALUE"}
	case strings.HasPrefix(msg, "flag needs an argument"):
		return &Error{Key: "-" + name, Source: "command line", Reason: "needs a value: -" + name + " VALUE"}
	}
	return &Error{Key: name, Source: "command line", Reason: oneLine(err)}
}

// flagValue records a flag's raw text; it is converted with the other layers.
type flagValue struct {
	name   string
	isBool bool
	into   map[string]any
}

func (f *flagValue) String() string { return "" }

func (f *flagValue) Set(s string) error {
	f.into[f.name] = s
	return nil
}

// IsBoolFlag lets --admin.pprof stand for --admin.pprof=true.
func (f *flagValue) IsBoolFlag() bool { return f.isBool }

// decode converts every merged value to its field's type, into cfg or into
// a new value of its section's struct, which starts as a copy of the
// section's Defaults (for its fields that are no keys).
func decode(k *koanf.Koanf, keys map[string]key, sections []sectionType, cfg *Config) error {
	root := reflect.ValueOf(cfg).Elem()
	values := make(map[string]reflect.Value, len(sections))
	for _, st := range sections {
		values[st.name] = cloneSection(st.defaults)
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kk := keys[name]
		raw := k.Get(name)
		if s, ok := raw.(string); ok && name == "server.max_inflight" && strings.TrimSpace(s) == "auto" {
			raw = AutoInflight
		}
		v, err := convert(raw, kk.typ)
		if err != nil && name == "server.max_inflight" {
			err = fmt.Errorf("invalid value %s: want a non-negative integer or \"auto\"", quoted(raw))
		}
		if err != nil {
			return &Error{Key: name, Reason: err.Error()}
		}
		if kk.section != "" {
			values[kk.section].FieldByIndex(kk.index).Set(v)
			continue
		}
		root.FieldByIndex(kk.index).Set(v)
	}
	for _, st := range sections { // in name order
		cfg.sections = append(cfg.sections, sectionValue{name: st.name, value: values[st.name]})
	}
	return decodeUpstreams(k, cfg)
}

// decodeUpstreams builds one Upstream per [upstreams.NAME] table, starting
// from DefaultUpstream, so a table needs only its url.
func decodeUpstreams(k *koanf.Koanf, cfg *Config) error {
	cfg.Upstreams = map[string]Upstream{}
	for _, name := range k.Keys() { // sorted
		up, field, _, ok := upstreamKey(name)
		if !ok {
			continue
		}
		u, seen := cfg.Upstreams[up]
		if !seen {
			u = DefaultUpstream()
		}
		kk := upstreamFields[field] // merge has refused unknown fields
		v, err := convert(k.Get(name), kk.typ)
		if err != nil {
			return &Error{Key: name, Reason: err.Error()}
		}
		reflect.ValueOf(&u).Elem().FieldByIndex(kk.index).Set(v)
		cfg.Upstreams[up] = u
	}
	return nil
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// convert turns a value from any layer (typed from TOML, text from the
// environment and flags) into t.
func convert(raw any, t reflect.Type) (reflect.Value, error) {
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return convertText(raw, t)
	}
	if t == durationType {
		switch v := raw.(type) {
		case time.Duration:
			return reflect.ValueOf(v), nil
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return reflect.Value{}, fmt.Errorf("invalid duration %q: use a Go duration such as \"5s\" or \"250ms\"", v)
			}
			return reflect.ValueOf(d), nil
		default:
			return reflect.Value{}, fmt.Errorf("invalid duration %v: write it as a string such as \"5s\"", raw)
		}
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := raw.(string); ok {
			return reflect.ValueOf(s), nil
		}
		return reflect.Value{}, fmt.Errorf("invalid value %v: want a string", raw)
	case reflect.Bool:
		switch v := raw.(type) {
		case bool:
			return reflect.ValueOf(v), nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return reflect.Value{}, fmt.Errorf("invalid value %q: want true or false", v)
			}
			return reflect.ValueOf(b), nil
		}
		return reflect.Value{}, fmt.Errorf("invalid value %s: want true or false", quoted(raw))
	case reflect.Int:
		switch v := raw.(type) {
		case int:
			return reflect.ValueOf(v), nil
		case int64:
			return reflect.ValueOf(int(v)), nil
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return reflect.Value{}, fmt.Errorf("invalid value %q: want an integer", v)
			}
			return reflect.ValueOf(n), nil
		}
		return reflect.Value{}, fmt.Errorf("invalid value %s: want an integer", quoted(raw))
	case reflect.Float64:
		switch v := raw.(type) {
		case float64:
			return reflect.ValueOf(v), nil
		case int64:
			return reflect.ValueOf(float64(v)), nil
		case int:
			return reflect.ValueOf(float64(v)), nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return reflect.Value{}, fmt.Errorf("invalid value %q: want a number", v)
			}
			return reflect.ValueOf(f), nil
		}
		return reflect.Value{}, fmt.Errorf("invalid value %s: want a number", quoted(raw))
	case reflect.Slice:
		return convertList(raw)
	}
	return reflect.Value{}, fmt.Errorf("unsupported type %s", t)
}

// convertText converts a value whose type parses itself from text (such as
// a ratelimit.Rate); a TOML integer is taken as its text ("0").
func convertText(raw any, t reflect.Type) (reflect.Value, error) {
	var text string
	switch v := raw.(type) {
	case string:
		text = v
	case int64:
		text = strconv.FormatInt(v, 10)
	case int:
		text = strconv.Itoa(v)
	default:
		if reflect.TypeOf(raw) == t { // the defaults layer holds typed values
			return reflect.ValueOf(raw), nil
		}
		return reflect.Value{}, fmt.Errorf("invalid value %v: want a string", raw)
	}
	p := reflect.New(t)
	if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(text)); err != nil {
		return reflect.Value{}, err
	}
	return p.Elem(), nil
}

// convertList accepts a TOML array of strings or comma-separated text.
func convertList(raw any) (reflect.Value, error) {
	out := []string{}
	switch v := raw.(type) {
	case []string:
		out = append(out, v...)
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return reflect.Value{}, fmt.Errorf("invalid list element %v: want strings", e)
			}
			out = append(out, s)
		}
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	default:
		return reflect.Value{}, fmt.Errorf("invalid list %v: want an array of strings or comma-separated text", raw)
	}
	return reflect.ValueOf(out), nil
}

// quoted shows a value from any layer as the user wrote it: text in quotes,
// a TOML number or boolean bare.
func quoted(raw any) string {
	if s, ok := raw.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(raw)
}

// oneLine keeps start-up messages to one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

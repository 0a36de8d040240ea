package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/ratelimit"
)

// hotpathSpec is the reference service's: framework keys only.
var hotpathSpec = Spec{Program: "hotpath", EnvPrefix: "HOTPATH_"}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDefaultsMatchRepositoryConfigFile: the repository's config.toml,
// the reference service's, holds the framework's defaults. Its own keys
// (api.max_fortunes, db.cache_refresh) are declared here as sections so
// the file loads; cmd/hotpath checks their values.
func TestDefaultsMatchRepositoryConfigFile(t *testing.T) {
	spec := hotpathSpec
	spec.Sections = []Section{
		{"api", &struct {
			MaxFortunes int `koanf:"max_fortunes"`
		}{}},
		{"db", &struct {
			CacheRefresh time.Duration `koanf:"cache_refresh"`
		}{}},
	}
	cfg, _, err := Load(spec, []string{"-config", "../../config.toml"}, nil)
	if err != nil {
		t.Fatalf("load repository config.toml: %v", err)
	}
	got, want := reflect.ValueOf(cfg), reflect.ValueOf(Default())
	for i := range got.NumField() {
		if f := got.Type().Field(i); f.IsExported() && !reflect.DeepEqual(got.Field(i).Interface(), want.Field(i).Interface()) {
			t.Errorf("config.toml differs from Default() in %s:\n got %+v\nwant %+v", f.Name, got.Field(i).Interface(), want.Field(i).Interface())
		}
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	path := writeFile(t, `
[server]
addr = ":7001"
read_timeout = "7s"
name = "from-file"
[log]
access_sample = 0.5
`)
	env := []string{"HOTPATH_SERVER__ADDR=:7002", "HOTPATH_LOG__ACCESS_SAMPLE=0.25", "HOTPATH_AUTH__TOKENS=aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb", "HOTPATH_TEST_POSTGRES_DSN=ignored", "PATH=/bin"}
	args := []string{"-config", path, "--server.addr=:7003", "--admin.pprof"}
	cfg, opts, err := Load(hotpathSpec, args, env)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("options path", opts.Path, path)
	check("server.addr (flag over env over file)", cfg.Server.Addr, ":7003")
	check("log.access_sample (env over file)", cfg.Log.AccessSample, 0.25)
	check("server.read_timeout (file over default)", cfg.Server.ReadTimeout, 7*time.Second)
	check("server.name (file)", cfg.Server.Name, "from-file")
	check("server.write_timeout (default)", cfg.Server.WriteTimeout, 5*time.Second)
	check("auth.tokens (comma-separated env)", cfg.Auth.Tokens, []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"})
	check("admin.pprof (bare bool flag)", cfg.Admin.Pprof, true)
}

func TestMissingDefaultFileIsFineButNamedFileIsNot(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, _, err := Load(hotpathSpec, nil, nil); err != nil {
		t.Errorf("no config.toml and no -config: %v, want defaults", err)
	}
	_, _, err := Load(hotpathSpec, []string{"-config", "nope.toml"}, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "-config" {
		t.Errorf("missing named file: err = %v, want a config error about -config", err)
	}
}

func TestVersionFlagSkipsLoading(t *testing.T) {
	_, opts, err := Load(hotpathSpec, []string{"-version", "-config", "does-not-exist.toml"}, []string{"HOTPATH_SERVER__ADDR=bad"})
	if err != nil || !opts.Version {
		t.Errorf("-version: opts %+v err %v, want Version and no error", opts, err)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		env     []string
		args    []string
		wantKey string
		wantMsg string
	}{
		{name: "unknown key in file", file: "[server]\nadrr = \":1\"\n", wantKey: "server.adrr", wantMsg: "unknown key"},
		{name: "unknown section in file", file: "[nope]\nx = 1\n", wantKey: "nope.x", wantMsg: "unknown key"},
		{name: "unknown key in environment", env: []string{"HOTPATH_SERVER__READTIMEOUT=1s"}, wantKey: "server.readtimeout", wantMsg: "HOTPATH_SERVER__READTIMEOUT"},
		{name: "environment without a section", env: []string{"HOTPATH__ADDR=:1"}, wantKey: "HOTPATH__ADDR", wantMsg: "HOTPATH_SECTION__KEY"},
		{name: "environment without a key", env: []string{"HOTPATH_SERVER__=:1"}, wantKey: "HOTPATH_SERVER__", wantMsg: "no section or no key"},
		{name: "environment with an empty section", env: []string{"HOTPATH___ADDR=:1"}, wantKey: "HOTPATH___ADDR", wantMsg: "no section or no key"},
		{name: "unknown flag", args: []string{"--server.adrr=:1"}, wantKey: "server.adrr", wantMsg: "(flag --server.adrr): unknown key"},
		{name: "bad duration in file", file: "[server]\nread_timeout = \"5 seconds\"\n", wantKey: "server.read_timeout", wantMsg: "invalid duration"},
		{name: "number for a duration", file: "[server]\nread_timeout = 5\n", wantKey: "server.read_timeout", wantMsg: "string"},
		{name: "bad duration in env", env: []string{"HOTPATH_DB__TIMEOUT=soon"}, wantKey: "db.timeout", wantMsg: "invalid duration"},
		{name: "zero timeout", args: []string{"--server.write_timeout=0s"}, wantKey: "server.write_timeout", wantMsg: "greater than zero"},
		{name: "sample above 1", env: []string{"HOTPATH_LOG__ACCESS_SAMPLE=1.5"}, wantKey: "log.access_sample", wantMsg: "between 0 and 1"},
		{name: "sample negative", args: []string{"--log.access_sample=-0.1"}, wantKey: "log.access_sample", wantMsg: "between 0 and 1"},
		{name: "sample not a number", args: []string{"--log.access_sample=lots"}, wantKey: "log.access_sample", wantMsg: `invalid value "lots": want a number`},
		{name: "address without port", args: []string{"--server.addr=localhost"}, wantKey: "server.addr", wantMsg: "host:port"},
		{name: "port out of range", args: []string{"--server.addr=:70000"}, wantKey: "server.addr", wantMsg: "0..65535"},
		{name: "admin on app port", args: []string{"--server.addr=:8080", "--admin.addr=127.0.0.1:8080"}, wantKey: "admin.addr", wantMsg: "must not share"},
		{name: "unknown driver", env: []string{"HOTPATH_DB__DRIVER=mysql"}, wantKey: "db.driver", wantMsg: "sqlite, postgres"},
		{name: "postgres with a file dsn", args: []string{"--db.driver=postgres", "--db.dsn=data/x.db"}, wantKey: "db.dsn", wantMsg: "postgres://"},
		{name: "bad level", args: []string{"--log.level=loud"}, wantKey: "log.level", wantMsg: "debug, info"},
		{name: "bad bool", args: []string{"--server.reuse_port=maybe"}, wantKey: "server.reuse_port", wantMsg: `invalid value "maybe": want true or false`},
		{name: "bad integer", env: []string{"HOTPATH_SERVER__MAX_BODY_SIZE=1MB"}, wantKey: "server.max_body_size", wantMsg: `invalid value "1MB": want an integer`},
		{name: "short token", env: []string{"HOTPATH_AUTH__TOKENS=short"}, wantKey: "auth.tokens", wantMsg: "16 characters"},
		{name: "bad webhook url", env: []string{"HOTPATH_WEBHOOKS__URLS=ftp://x"}, wantKey: "webhooks.urls", wantMsg: "http"},
		{name: "rate without a unit", env: []string{"HOTPATH_LIMITS__READS=100"}, wantKey: "limits.reads", wantMsg: "N/s"},
		{name: "rate per day", args: []string{"--limits.anonymous_writes=20/d"}, wantKey: "limits.anonymous_writes", wantMsg: "N/h"},
		{name: "negative rate in file", file: "[limits]\ntoken_writes = \"-1/s\"\n", wantKey: "limits.token_writes", wantMsg: "invalid rate"},
		{name: "number for a rate", file: "[limits]\nreads = 5\n", wantKey: "limits.reads", wantMsg: "invalid rate"},
		{name: "proxy with host bits", env: []string{"HOTPATH_SERVER__TRUSTED_PROXIES=10.0.0.0/8,10.1.2.3/16"}, wantKey: "server.trusted_proxies", wantMsg: "did you mean 10.1.0.0/16"},
		{name: "stray argument", args: []string{"serve"}, wantKey: "serve", wantMsg: "unexpected argument"},
		{name: "broken toml", file: "[server\naddr=", wantKey: "-config", wantMsg: ":1:8): TOML syntax error"},
		{name: "inflight neither count nor auto", args: []string{"--server.max_inflight=lots"}, wantKey: "server.max_inflight", wantMsg: `invalid value "lots": want a non-negative integer or "auto"`},
		{name: "inflight as a TOML float", file: "[server]\nmax_inflight = 1.5\n", wantKey: "server.max_inflight", wantMsg: `invalid value 1.5: want a non-negative integer or "auto"`},
		{name: "flag without a value", args: []string{"--server.addr"}, wantKey: "server.addr", wantMsg: "(flag --server.addr): needs a value: --server.addr=VALUE"},
		{name: "unknown switch", args: []string{"-confg", "x.toml"}, wantKey: "-confg", wantMsg: "unknown flag; hotpath takes -config PATH"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, tc.file)}, args...)
			} else {
				args = append([]string{"-config", writeFile(t, "")}, args...)
			}
			_, _, err := Load(hotpathSpec, args, tc.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("file %q env %v args %v: err = %v, want *Error", tc.file, tc.env, tc.args, err)
			}
			msg := ce.Error()
			if ce.Key != tc.wantKey || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.wantMsg)) {
				t.Errorf("got key %q message %q, want key %q and message containing %q", ce.Key, msg, tc.wantKey, tc.wantMsg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q spans lines, want one line", msg)
			}
		})
	}
}

// TestInvalidValueNamesItsSource: a bad value's message says which layer
// set it, the one that won, so the operator knows what to fix.
func TestInvalidValueNamesItsSource(t *testing.T) {
	file := writeFile(t, "[db]\ntimeout = \"soon\"\n[log]\naccess_sample = 0.5\n")
	cases := []struct {
		name       string
		env, args  []string
		wantSource string // "" means Load must succeed
	}{
		{name: "file", wantSource: file},
		{name: "env over file", env: []string{"HOTPATH_DB__TIMEOUT=later"}, wantSource: "environment HOTPATH_DB__TIMEOUT"},
		{name: "flag over env", env: []string{"HOTPATH_DB__TIMEOUT=later"}, args: []string{"--db.timeout=never"}, wantSource: "flag --db.timeout"},
		{name: "good flag over bad file", args: []string{"--db.timeout=1s"}},
		{name: "range check", args: []string{"--db.timeout=1s", "--log.access_sample=2"}, wantSource: "flag --log.access_sample"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(hotpathSpec, append([]string{"-config", file}, tc.args...), tc.env)
			if tc.wantSource == "" {
				if err != nil {
					t.Fatalf("Load: %v, want the flag to override the file's bad value", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ce.Source != tc.wantSource || !strings.Contains(ce.Error(), "("+tc.wantSource+")") {
				t.Errorf("message %q (source %q), want source %q", ce.Error(), ce.Source, tc.wantSource)
			}
		})
	}
}

func TestRateLimitKeysFromEverySource(t *testing.T) {
	cases := []struct {
		file      string
		env, args []string
		want      Limits
	}{
		{want: Limits{AnonymousWrites: ratelimit.Rate{N: 20, Per: time.Minute}}},
		{file: "[limits]\nanonymous_writes = 0\nreads = \"50/s\"\n", want: Limits{Reads: ratelimit.Rate{N: 50, Per: time.Second}}},
		{env: []string{"HOTPATH_LIMITS__TOKEN_WRITES=100/h", "HOTPATH_LIMITS__ANONYMOUS_WRITES="},
			want: Limits{TokenWrites: ratelimit.Rate{N: 100, Per: time.Hour}}},
		{args: []string{"--limits.anonymous_writes=5/s"}, want: Limits{AnonymousWrites: ratelimit.Rate{N: 5, Per: time.Second}}},
	}
	for _, tc := range cases {
		cfg, _, err := Load(hotpathSpec, append([]string{"-config", writeFile(t, tc.file)}, tc.args...), tc.env)
		if err != nil || cfg.Limits != tc.want {
			t.Errorf("file %q env %v args %v: %+v, %v; want %+v", tc.file, tc.env, tc.args, cfg.Limits, err, tc.want)
		}
	}
}

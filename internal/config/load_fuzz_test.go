package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary TOML, one environment variable and one flag to
// Load, for hotpath and for a service with sections of its own. Whatever
// comes in, Load must not panic, and it must either return a configuration
// that passes Validate or an error on one line (the process prints it and
// exits 2).
func FuzzLoad(f *testing.F) {
	f.Add("[server]\naddr = \":8081\"\n", "SERVER__READ_TIMEOUT", "7s", "--log.level=debug")
	f.Add("[server]\nmax_inflight = \"auto\"\n", "SERVER__MAX_INFLIGHT", "12", "--server.max_inflight=auto")
	f.Add("[db]\ndriver = \"postgres\"\ndsn = \"postgres://x@y/z\"\n", "DB__TIMEOUT", "-1s", "--db.max_conns=-1")
	f.Add("[server\naddr = 1", "SERVER__ADRR", ":1", "--nope")
	f.Add("[auth]\ntokens = [1, 2]\n", "AUTH__TOKENS", "short,x", "--log.access_sample=NaN")
	f.Add("[log]\naccess_sample = 1e308\n", "LOG__ACCESS_SAMPLE", "0.5\n", "-config")
	f.Add("x = { y = [[]] }\n[[server]]\n", "WEBHOOKS__URLS", "ftp://a", "--admin.pprof=maybe")
	f.Add("[notes]\ntags = [\"a\"]\nwrites = 3\n", "NOTES__MAX_NOTES", "0", "--notes.ratio=2")
	f.Add("[api]\nnotes_cap = \"x\"\n[notes.sub]\nx = 1\n", "NOTES__PUBLIC", "true", "--notes.title=admin")
	f.Fuzz(func(t *testing.T, file, envKey, envValue, arg string) {
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"-config", path}
		if arg != "" {
			args = append(args, arg)
		}
		for _, spec := range []Spec{hotpathSpec, notesSpec()} {
			cfg, opts, err := Load(spec, args, []string{spec.EnvPrefix + envKey + "=" + envValue})
			switch {
			case errors.Is(err, flag.ErrHelp), err == nil && opts.Version:
			case err != nil:
				if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "config") {
					t.Fatalf("%s: error %q is not one line starting with config", spec.Program, msg)
				}
			default:
				if verr := cfg.Validate(); verr != nil {
					t.Fatalf("%s: Load accepted a configuration that Validate refuses: %v", spec.Program, verr)
				}
			}
		}
	})
}

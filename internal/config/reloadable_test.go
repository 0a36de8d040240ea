package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryKeyIsReloadableOrRestartOnly makes a new framework key take a
// side: a key in neither list would be silently ignored by a reload.
func TestEveryKeyIsReloadableOrRestartOnly(t *testing.T) {
	keys := hotpathSpec.Keys()
	for _, k := range keys {
		r, s := slices.Contains(reloadableKeys, k), slices.Contains(restartKeys, k)
		if r == s {
			t.Errorf("%s: in reloadableKeys %v, in restartKeys %v; want exactly one (internal/config/reloadable.go)", k, r, s)
		}
	}
	for _, list := range [][]string{reloadableKeys, restartKeys} {
		for _, k := range list {
			if !slices.Contains(keys, k) {
				t.Errorf("%s is listed but is no configuration key", k)
			}
		}
	}
}

func TestReloadedTakesReloadableKeysAndReportsTheRest(t *testing.T) {
	running := Default()
	running.Auth.Tokens = []string{"aaaaaaaaaaaaaaaa"}
	next := running
	next.Auth.Tokens = []string{"bbbbbbbbbbbbbbbb"}
	next.Log.Level = "debug"
	next.Server.MaxInflight = AutoInflight
	next.Server.Addr = ":7777"
	next.DB.Timeout = running.DB.Timeout * 2
	next.Upstreams = map[string]Upstream{"svc": DefaultUpstream()}

	applied, changed, restart := running.Reloaded(next)
	if want := []string{"auth.tokens", "log.level", "server.max_inflight"}; !slices.Equal(changed, want) {
		t.Errorf("changed = %v, want %v", changed, want)
	}
	if want := []string{"db.timeout", "server.addr", "upstreams"}; !slices.Equal(restart, want) {
		t.Errorf("restart = %v, want %v", restart, want)
	}
	if applied.Log.Level != "debug" || applied.Server.MaxInflight != AutoInflight || applied.Auth.Tokens[0] != "bbbbbbbbbbbbbbbb" {
		t.Errorf("applied %+v lacks the reloadable changes", applied)
	}
	if applied.Server.Addr != running.Server.Addr || applied.DB.Timeout != running.DB.Timeout || len(applied.Upstreams) != 0 {
		t.Errorf("applied took a restart-only change: addr %q timeout %s upstreams %v", applied.Server.Addr, applied.DB.Timeout, applied.Upstreams)
	}
	if _, changed, restart := running.Reloaded(running); changed != nil || restart != nil {
		t.Errorf("identical configuration: changed %v restart %v, want none", changed, restart)
	}
}

func TestReloadedSeesTokensFileContent(t *testing.T) {
	running := Default()
	running.Auth.TokensFile = "/run/tokens"
	running.Auth.FileTokens = []string{"aaaaaaaaaaaaaaaa"}
	next := running
	next.Auth.FileTokens = []string{"aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}
	applied, changed, _ := running.Reloaded(next)
	if !slices.Equal(changed, []string{"auth.tokens_file"}) || len(applied.Auth.FileTokens) != 2 {
		t.Errorf("changed %v, applied file tokens %v; want auth.tokens_file and both tokens", changed, applied.Auth.FileTokens)
	}
	if running.Hash() == applied.Hash() {
		t.Errorf("hash %s did not change with the file's tokens", running.Hash())
	}
}

func TestHashIsStableAndFollowsValues(t *testing.T) {
	a, b := Default(), Default()
	b.Auth.Tokens = nil // empty and missing lists are the same setting
	if a.Hash() != b.Hash() || len(a.Hash()) != 12 {
		t.Errorf("hashes %q and %q of equal configurations differ or are not 12 digits", a.Hash(), b.Hash())
	}
	b.Log.AccessSample = 0.5
	if a.Hash() == b.Hash() {
		t.Errorf("hash %q unchanged after log.access_sample changed", a.Hash())
	}
	c := Default()
	c.Upstreams = map[string]Upstream{"x": DefaultUpstream()}
	if c.Hash() == a.Hash() {
		t.Errorf("hash unchanged by an upstream table")
	}
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# rotated 2025-01\n  aaaaaaaaaaaaaaaa  \n\n#bbbbbbbbbbbbbbbb\ncccccccccccccccc\n")
	cfg, _, err := Load(hotpathSpec, []string{"-config", write("c.toml", ""), "--auth.tokens_file=" + good}, []string{"HOTPATH_AUTH__TOKENS=dddddddddddddddd"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"aaaaaaaaaaaaaaaa", "cccccccccccccccc"}; !slices.Equal(cfg.Auth.FileTokens, want) {
		t.Errorf("file tokens %v, want %v", cfg.Auth.FileTokens, want)
	}
	if want := []string{"dddddddddddddddd", "aaaaaaaaaaaaaaaa", "cccccccccccccccc"}; !slices.Equal(cfg.Auth.AllTokens(), want) {
		t.Errorf("all tokens %v, want %v", cfg.Auth.AllTokens(), want)
	}

	for _, tc := range []struct {
		name, path, want string
	}{
		{"short token", write("short", "aaaaaaaaaaaaaaaa\nshort\n"), "line 2: every token must be at least 16 characters"},
		{"inner space", write("space", "aaaaaaaa aaaaaaaaaa\n"), "line 1: tokens must not contain whitespace"},
		{"missing", filepath.Join(dir, "absent"), "no such file"},
		{"directory", dir, "is a directory"},
	} {
		_, _, err := Load(hotpathSpec, []string{"-config", write("c.toml", ""), "--auth.tokens_file=" + tc.path}, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "auth.tokens_file" || ce.Source != "flag --auth.tokens_file" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want a config error naming auth.tokens_file, its flag and %q", tc.name, err, tc.want)
		}
		if strings.Contains(err.Error(), "aaaaaaaa") {
			t.Errorf("%s: error %q repeats a token", tc.name, err)
		}
	}
}

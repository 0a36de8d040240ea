package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUpstreamTablesFromFileEnvAndFlags(t *testing.T) {
	path := writeFile(t, `
[upstreams.payments]
url = "http://127.0.0.1:9000/v1"
retries = 0
[upstreams.geo-ip]
url = "https://geo.example"
timeout = "300ms"
`)
	env := []string{"HOTPATH_UPSTREAMS__PAYMENTS__MAX_CONNS=7", "HOTPATH_UPSTREAMS__SEARCH__URL=http://search:80"}
	args := []string{"-config", path, "--upstreams.payments.timeout=1s", "--upstreams.search.breaker_cooldown=9s"}
	cfg, _, err := Load(hotpathSpec, args, env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Upstream{}
	p := DefaultUpstream()
	p.URL, p.Retries, p.MaxConns, p.Timeout = "http://127.0.0.1:9000/v1", 0, 7, time.Second
	want["payments"] = p
	g := DefaultUpstream()
	g.URL, g.Timeout = "https://geo.example", 300*time.Millisecond
	want["geo-ip"] = g
	s := DefaultUpstream()
	s.URL, s.BreakerCooldown = "http://search:80", 9*time.Second
	want["search"] = s
	if !reflect.DeepEqual(cfg.Upstreams, want) {
		t.Errorf("upstreams:\n got %+v\nwant %+v", cfg.Upstreams, want)
	}
}

func TestUpstreamMistakesStopStartUp(t *testing.T) {
	cases := []struct {
		name, toml string
		env, args  []string
		key        string
	}{
		{name: "unknown field in file", toml: "[upstreams.a]\nurl = \"http://a\"\nretry = 3\n", key: "upstreams.a.retry"},
		{name: "unknown field in env", env: []string{"HOTPATH_UPSTREAMS__A__URL=http://a", "HOTPATH_UPSTREAMS__A__SPEED=1"}, key: "upstreams.a.speed"},
		{name: "unknown field in flag", args: []string{"--upstreams.a.url=http://a", "--upstreams.a.bogus=1"}, key: "upstreams.a.bogus"},
		{name: "bad name", toml: "[upstreams.\"Bad Name\"]\nurl = \"http://a\"\n", key: "upstreams.Bad Name.url"},
		{name: "missing url", toml: "[upstreams.a]\ntimeout = \"1s\"\n", key: "upstreams.a.url"},
		{name: "bad duration", args: []string{"--upstreams.a.url=http://a", "--upstreams.a.timeout=soon"}, key: "upstreams.a.timeout"},
		{name: "too many retries", args: []string{"--upstreams.a.url=http://a", "--upstreams.a.retries=50"}, key: "upstreams.a.retries"},
		{name: "webhook urls without secret", args: []string{"--webhooks.urls=http://a/hook"}, key: "webhooks.secret"},
		{name: "webhook url twice", args: []string{"--webhooks.urls=http://a/hook,http://a/hook", "--webhooks.secret=0123456789abcdef0123456789abcdef"}, key: "webhooks.urls"},
		{name: "webhook concurrency zero", args: []string{"--webhooks.concurrency=0"}, key: "webhooks.concurrency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-config", writeFile(t, c.toml)}, c.args...)
			_, _, err := Load(hotpathSpec, args, c.env)
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != c.key {
				t.Fatalf("Load(%q, env %q) = %v, want a config error naming %s", args, c.env, err, c.key)
			}
			if strings.Contains(ce.Error(), "\n") {
				t.Errorf("message spans lines: %q", ce.Error())
			}
		})
	}
}

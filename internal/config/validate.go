package config

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/internal/clientip"
)

// Validate checks every value that decoding alone cannot: ranges, addresses,
// enumerations, and what each section's own Validate checks. The first
// problem found is returned as an *Error.
func (c *Config) Validate() error {
	checks := []struct {
		key string
		err error
	}{
		{"server.addr", checkAddr(c.Server.Addr)},
		{"server.name", checkHeaderValue(c.Server.Name)},
		{"server.read_timeout", positive(c.Server.ReadTimeout)},
		{"server.write_timeout", positive(c.Server.WriteTimeout)},
		{"server.idle_timeout", positive(c.Server.IdleTimeout)},
		{"server.max_body_size", atLeast(c.Server.MaxBodySize, 1)},
		{"server.read_buffer_size", atLeast(c.Server.ReadBufferSize, 1024)},
		{"server.concurrency", atLeast(c.Server.Concurrency, 1)},
		{"server.max_conns_per_ip", atLeast(c.Server.MaxConnsPerIP, 0)},
		{"server.max_inflight", checkInflight(c.Server.MaxInflight)},
		{"server.trusted_proxies", checkProxies(c.Server.TrustedProxies)},
		{"server.compress_min_size", atLeast(c.Server.CompressMinSize, 0)},
		{"admin.addr", checkAdminAddr(c.Admin.Addr, c.Server.Addr)},
		{"db.driver", oneOf(c.DB.Driver, "sqlite", "postgres")},
		{"db.dsn", checkDSN(c.DB.Driver, c.DB.DSN)},
		{"db.timeout", atLeastDuration(c.DB.Timeout, time.Millisecond)},
		{"db.max_conns", atLeast(c.DB.MaxConns, 0)},
		{"db.conn_max_lifetime", positive(c.DB.ConnMaxLifetime)},
		{"db.conn_max_idle_time", positive(c.DB.ConnMaxIdleTime)},
		{"db.sqlite_synchronous", oneOf(c.DB.SQLiteSynchronous, "full", "normal")},
		{"log.level", oneOf(c.Log.Level, "debug", "info", "warn", "error")},
		{"log.access_sample", checkShare(c.Log.AccessSample)},
		{"log.slow", positive(c.Log.Slow)},
		{"log.access_buffer", atLeast(c.Log.AccessBuffer, 1)},
		{"shutdown.drain", notNegative(c.Shutdown.Drain)},
		{"shutdown.timeout", positive(c.Shutdown.Timeout)},
		{"auth.tokens", checkTokens(c.Auth.Tokens)},
		{"api.idempotency_ttl", atLeastDuration(c.API.IdempotencyTTL, time.Second)},
		{"security.csrf_secret", checkSecret(c.Security.CSRFSecret)},
		{"security.trusted_origins", checkOrigins(c.Security.TrustedOrigins)},
		{"webhooks.urls", checkURLs(c.Webhooks.URLs)},
		{"webhooks.secret", checkWebhookSecret(c.Webhooks.Secret, c.Webhooks.URLs)},
		{"webhooks.retention", positive(c.Webhooks.Retention)},
		{"webhooks.concurrency", atLeast(c.Webhooks.Concurrency, 1)},
		{"webhooks.timeout", positive(c.Webhooks.Timeout)},
		{"webhooks.max_attempts", atLeast(c.Webhooks.MaxAttempts, 0)},
		{"tracing.endpoint", checkEndpoint(c.Tracing.Endpoint)},
		{"tracing.sample", checkShare(c.Tracing.Sample)},
		{"tracing.service_name", checkServiceName(c.Tracing.ServiceName)},
		{"tracing.timeout", positive(c.Tracing.Timeout)},
		{"tracing.queue", between(c.Tracing.Queue, 1, 1<<20)},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return &Error{Key: ch.key, Reason: ch.err.Error()}
		}
	}
	if err := c.validateUpstreams(); err != nil {
		return err
	}
	return c.validateSections()
}

// validateUpstreams checks every [upstreams.NAME] table, in name order so
// the same mistake always gives the same message.
func (c *Config) validateUpstreams() error {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := c.Upstreams[n]
		checks := []struct {
			key string
			err error
		}{
			{"url", checkURL(u.URL)},
			{"timeout", positive(u.Timeout)},
			{"max_conns", atLeast(u.MaxConns, 1)},
			{"retries", between(u.Retries, 0, 10)},
			{"breaker_failures", atLeast(u.BreakerFailures, 1)},
			{"breaker_cooldown", positive(u.BreakerCooldown)},
		}
		for _, ch := range checks {
			if ch.err != nil {
				return &Error{Key: "upstreams." + n + "." + ch.key, Reason: ch.err.Error()}
			}
		}
	}
	return nil
}

func positive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("must be greater than zero, got %s", d)
	}
	return nil
}

// atLeastDuration: db.timeout goes to the database in whole milliseconds,
// where 0 means no limit at all.
func atLeastDuration(d, min time.Duration) error {
	if d < min {
		return fmt.Errorf("must be at least %s, got %s", min, d)
	}
	return nil
}

func notNegative(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("must not be negative, got %s", d)
	}
	return nil
}

func atLeast(n, min int) error {
	if n < min {
		return fmt.Errorf("must be at least %d, got %d", min, n)
	}
	return nil
}

func checkInflight(n int) error {
	if n < 0 && n != AutoInflight {
		return fmt.Errorf("must be 0 (no cap), a positive count or \"auto\", got %d", n)
	}
	return nil
}

func oneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("invalid value %q: want one of %s", s, strings.Join(allowed, ", "))
}

func checkShare(f float64) error {
	if !(f >= 0 && f <= 1) {
		return fmt.Errorf("must be between 0 and 1, got %v", f)
	}
	return nil
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want host:port such as \":8080\"", addr)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("invalid host %q in %q: want an IP address or localhost", host, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q in %q: want 0..65535", port, addr)
	}
	return nil
}

func checkAdminAddr(admin, app string) error {
	if err := checkAddr(admin); err != nil {
		return err
	}
	_, ap, _ := net.SplitHostPort(admin) // checked above
	_, sp, err := net.SplitHostPort(app)
	if err == nil && ap == sp && ap != "0" {
		return fmt.Errorf("must not share port %s with server.addr: admin endpoints never go on the app port", ap)
	}
	return nil
}

func checkHeaderValue(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fmt.Errorf("must not contain control characters")
		}
	}
	return nil
}

func checkDSN(driver, dsn string) error {
	if strings.TrimSpace(dsn) == "" {
		return fmt.Errorf("must not be empty")
	}
	if driver == "postgres" && !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return fmt.Errorf("db.driver is postgres, so want a postgres:// URL")
	}
	return nil
}

func checkTokens(tokens []string) error {
	for _, t := range tokens {
		if len(t) < 16 {
			return fmt.Errorf("every token must be at least 16 characters; generate one with: openssl rand -hex 32")
		}
		if strings.ContainsAny(t, " \t\r\n") {
			return fmt.Errorf("tokens must not contain whitespace")
		}
	}
	return nil
}

func checkSecret(s string) error {
	if s != "" && len(s) < 32 {
		return fmt.Errorf("must be empty or at least 32 characters; generate one with: openssl rand -hex 32")
	}
	return nil
}

func checkOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("invalid origin %q: want scheme://host[:port]", o)
		}
	}
	return nil
}

func checkProxies(cidrs []string) error {
	_, err := clientip.ParsePrefixes(cidrs)
	return err
}

func checkURLs(urls []string) error {
	seen := map[string]bool{}
	for _, s := range urls {
		if err := checkURL(s); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("URL %q is listed twice: each receiver would get every event twice", s)
		}
		seen[s] = true
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid URL %q: want http:// or https://", s)
	}
	return nil
}

func between(n, lo, hi int) error {
	if n < lo || n > hi {
		return fmt.Errorf("must be between %d and %d, got %d", lo, hi, n)
	}
	return nil
}

// checkWebhookSecret insists on a key once there are receivers: an
// unsigned event cannot be told from a forged one.
func checkWebhookSecret(secret string, urls []string) error {
	if len(urls) > 0 && len(secret) < 32 {
		return fmt.Errorf("must be at least 32 characters when webhooks.urls is set; generate one with: openssl rand -hex 32")
	}
	return nil
}

// checkEndpoint wants a collector's base URL: the exporter appends
// /v1/traces itself, and a query or fragment would be lost.
func checkEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("invalid URL %q: want the collector's OTLP/HTTP base URL, such as http://otel-collector:4318 (empty = tracing off)", s)
	}
	return nil
}

func checkServiceName(s string) error {
	if s != "" {
		return checkHeaderValue(s)
	}
	return nil
}

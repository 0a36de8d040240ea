// Package config holds the configuration of a program built on hotpath:
// the typed Config of the framework keys, its defaults, the sections a
// program declares, and the layered loading (defaults, TOML file,
// environment, flags) with strict validation.
//
// A program describes itself with a Spec: its name in messages, its
// environment prefix (HOTPATH_ for hotpath, so HOTPATH_SERVER__ADDR sets
// server.addr; NOTES_ for a service named notes) and its Sections. A
// Section is a struct whose field values are the defaults:
//
//	type NotesConfig struct {
//		// MaxNotes caps the notes stored.
//		MaxNotes int `koanf:"max_notes" reload:"true"`
//		// Expiry is how long a note is kept.
//		Expiry time.Duration `koanf:"expiry"`
//	}
//	spec := config.Spec{Program: "notes", EnvPrefix: "NOTES_", Sections: []config.Section{
//		{Name: "notes", Defaults: &NotesConfig{MaxNotes: 10000, Expiry: 24 * time.Hour}},
//	}}
//
// Its keys are notes.max_notes and notes.expiry, read from the [notes]
// table of the TOML file, from NOTES_NOTES__MAX_NOTES and from
// --notes.max_notes=N exactly as framework keys are: an unknown key of the
// section or a bad value stops Load with an *Error naming the key and its
// source. The rules:
//
//   - Name is 1..64 of a-z, 0-9 and single underscores, starting with a
//     letter and not ending with an underscore (the same for each koanf
//     tag), and not "upstreams". It may name a framework section ("api"),
//     adding keys to it; a key that exists already, or a section declared
//     twice, is refused by Spec.Check, which Load calls first.
//   - Every exported field is a key and needs a koanf tag, except those
//     tagged koanf:"-", which keep their Defaults value. A key's type is
//     string, bool, int, float64, time.Duration, []string (a TOML array or
//     comma-separated text), or a struct whose pointer is an
//     encoding.TextUnmarshaler (ratelimit.Rate); named variants of the
//     others are refused.
//   - A field tagged reload:"true" is applied by a reload; the others keep
//     their running values until a restart, and a reload names them.
//   - If *T has Validate() error, it runs after decoding, at start-up and
//     at every reload, on a copy; a *Error with a Key without a dot names a
//     key of the section.
//
// Config.Section(name) returns a pointer to a fresh copy of a section's
// decoded value; Reloaded and Hash cover the sections' keys. A Config is a
// value that is copied around: its section values are never changed in
// place, so no copy can change another.
package config

import (
	"time"

	"github.com/hotpath/hotpath/internal/ratelimit"
)

// Config is the whole configuration of one hotpath process. Every field maps
// to one key of config.toml (the koanf tag), documented there for users.
type Config struct {
	Server   Server   `koanf:"server"`
	Admin    Admin    `koanf:"admin"`
	DB       DB       `koanf:"db"`
	Log      Log      `koanf:"log"`
	Shutdown Shutdown `koanf:"shutdown"`
	Auth     Auth     `koanf:"auth"`
	API      API      `koanf:"api"`
	Security Security `koanf:"security"`
	Webhooks Webhooks `koanf:"webhooks"`
	Reload   Reload   `koanf:"reload"`
	Limits   Limits   `koanf:"limits"`
	Tracing  Tracing  `koanf:"tracing"`
	// Upstreams are the other services hotpath calls, by name: the TOML
	// tables [upstreams.NAME]. Every call goes through internal/upstream.
	Upstreams map[string]Upstream `koanf:"upstreams"`

	// sections are the decoded values of the Spec's sections, in name
	// order (Section reads them).
	sections []sectionValue
}

// Server configures the application listener.
type Server struct {
	// Addr is the application listener address, host:port.
	Addr string `koanf:"addr"`
	// Name is the value of the Server response header.
	Name string `koanf:"name"`
	// ReadTimeout bounds reading one whole request, body included.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// WriteTimeout bounds writing one response.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxBodySize is the largest request body accepted, in bytes; larger gets 413.
	MaxBodySize int `koanf:"max_body_size"`
	// ReadBufferSize is the per-connection read buffer, in bytes. It also caps
	// the request line plus headers: larger gets 431.
	ReadBufferSize int `koanf:"read_buffer_size"`
	// Concurrency caps open connections; over it new connections get 503.
	Concurrency int `koanf:"concurrency"`
	// MaxConnsPerIP caps connections from one client address (0 = no cap).
	MaxConnsPerIP int `koanf:"max_conns_per_ip"`
	// MaxInflight caps requests being handled at once; over it they get an
	// immediate 503 with Retry-After (0 = no cap). "auto" (AutoInflight) lets
	// the cap follow handler latency.
	MaxInflight int `koanf:"max_inflight"`
	// ReusePort sets SO_REUSEPORT so several processes can share the port.
	ReusePort bool `koanf:"reuse_port"`
	// Prefork starts one child process per CPU sharing the port (implies
	// ReusePort). Not for Kubernetes: scale with replicas there.
	Prefork bool `koanf:"prefork"`
	// TrustedProxies are the CIDR prefixes (or single addresses) of the
	// proxies in front of hotpath. A request from one of them is taken to
	// come from the right-most untrusted address of its X-Forwarded-For (or
	// Forwarded) header; from any other peer the socket peer is the client.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// Compress compresses the answers of the routes that can be large
	// (zstd, br or gzip, as the client's Accept-Encoding prefers).
	Compress bool `koanf:"compress"`
	// CompressMinSize: bodies smaller than this, in bytes, go out as they are.
	CompressMinSize int `koanf:"compress_min_size"`
}

// AutoInflight is server.max_inflight = "auto": an adaptive cap.
const AutoInflight = -1

// Admin configures the admin listener: health, readiness, metrics, pprof.
type Admin struct {
	// Addr is the admin listener address; never the same as server.addr.
	Addr string `koanf:"addr"`
	// Pprof serves /debug/pprof/ on the admin listener.
	Pprof bool `koanf:"pprof"`
}

// DB configures the database.
type DB struct {
	// Driver is "sqlite" (embedded) or "postgres".
	Driver string `koanf:"driver"`
	// DSN is the SQLite file path or a postgres:// URL.
	DSN string `koanf:"dsn"`
	// Timeout bounds every database call.
	Timeout time.Duration `koanf:"timeout"`
	// MaxConns caps the connection pool (0 = automatic from the CPU count).
	MaxConns int `koanf:"max_conns"`
	// ConnMaxLifetime recycles connections older than this.
	ConnMaxLifetime time.Duration `koanf:"conn_max_lifetime"`
	// ConnMaxIdleTime closes connections idle for this long.
	ConnMaxIdleTime time.Duration `koanf:"conn_max_idle_time"`
	// SQLiteSynchronous is SQLite's commit durability: "full" (a commit
	// is on disk when it returns, so it survives the node losing power) or
	// "normal" (it survives the process dying, not the node).
	SQLiteSynchronous string `koanf:"sqlite_synchronous"`
}

// Log configures the application and access logs.
type Log struct {
	// Level is the application log level: debug, info, warn or error.
	Level string `koanf:"level"`
	// AccessSample is the share (0..1) of ordinary requests written to the access log.
	AccessSample float64 `koanf:"access_sample"`
	// Slow: requests slower than this are always access-logged, as are all 5xx.
	Slow time.Duration `koanf:"slow"`
	// AccessBuffer is how many access records may wait for the writer; when
	// full, records are dropped and counted, never blocking a request.
	AccessBuffer int `koanf:"access_buffer"`
}

// Shutdown configures the graceful drain.
type Shutdown struct {
	// Drain: after SIGTERM readiness fails while the listener still serves, for this long.
	Drain time.Duration `koanf:"drain"`
	// Timeout: then in-flight requests get this long to finish.
	Timeout time.Duration `koanf:"timeout"`
}

// Auth configures who may write through /api/v1.
type Auth struct {
	// Tokens are the bearer tokens allowed to write; with no tokens here or
	// in TokensFile every write is refused.
	Tokens []string `koanf:"tokens"`
	// TokensFile names a file of more bearer tokens, one a line, with #
	// comments; the tokens of both keys are accepted. A reload reads it
	// again, so tokens rotate without a restart.
	TokensFile string `koanf:"tokens_file"`
	// FileTokens are the tokens Load read from TokensFile. Not a key.
	FileTokens []string `koanf:"-"`
}

// AllTokens returns the tokens of auth.tokens and auth.tokens_file.
func (a Auth) AllTokens() []string {
	return append(append(make([]string, 0, len(a.Tokens)+len(a.FileTokens)), a.Tokens...), a.FileTokens...)
}

// API configures what every service's routes share.
type API struct {
	// IdempotencyTTL is how long the answer of a write sent with an
	// Idempotency-Key is kept, and replayed to retries with that key.
	IdempotencyTTL time.Duration `koanf:"idempotency_ttl"`
}

// Security configures the HTML form's CSRF defence.
type Security struct {
	// CSRFSecret keys the CSRF token HMAC; empty means a random one per process
	// (replicas then need a shared one).
	CSRFSecret string `koanf:"csrf_secret"`
	// TrustedOrigins are extra origins (scheme://host[:port]) allowed to post forms.
	TrustedOrigins []string `koanf:"trusted_origins"`
	// SecureCookie marks the CSRF cookie Secure (named __Host-hotpath_csrf)
	// and makes https this server's own origin: set it behind a TLS ingress.
	SecureCookie bool `koanf:"secure_cookie"`
}

// Limits configures the per-client rate limits (package ratelimit): each
// is "N/s", "N/m" or "N/h" (a bucket of N refilled at that rate), or "0"
// for off. They are per process: replicas each allow their own.
type Limits struct {
	// AnonymousWrites limits writes without a valid bearer token (the HTML
	// form; API writes refused for their credentials), per client address.
	AnonymousWrites ratelimit.Rate `koanf:"anonymous_writes"`
	// TokenWrites limits writes through /api/v1 with a valid bearer token,
	// per token.
	TokenWrites ratelimit.Rate `koanf:"token_writes"`
	// Reads limits every other request, per client address.
	Reads ratelimit.Rate `koanf:"reads"`
}

// Webhooks configures change events sent to other systems.
type Webhooks struct {
	// URLs receive a signed POST for every change event.
	URLs []string `koanf:"urls"`
	// Secret is the HMAC-SHA256 key for X-Hotpath-Signature.
	Secret string `koanf:"secret"`
	// Retention is how long delivered (or abandoned) events stay in the
	// outbox table before they are deleted.
	Retention time.Duration `koanf:"retention"`
	// Concurrency caps deliveries in flight at once, across all URLs; each
	// URL gets its events one at a time, in order.
	Concurrency int `koanf:"concurrency"`
	// Timeout bounds one delivery attempt, connecting included.
	Timeout time.Duration `koanf:"timeout"`
	// MaxAttempts gives up on an event for one URL after this many failed
	// attempts (0 = retry until delivered).
	MaxAttempts int `koanf:"max_attempts"`
}

// Reload configures how a running process takes configuration changes.
type Reload struct {
	// Watch reloads when the -config file or a file named by a *_file key
	// changes, kubelet-style symlink swaps of its directory included.
	// SIGHUP reloads either way.
	Watch bool `koanf:"watch"`
}

// Tracing configures OpenTelemetry tracing: W3C trace context in and out,
// sampled spans exported over OTLP/HTTP.
type Tracing struct {
	// Endpoint is the OTLP/HTTP base URL of a collector (spans go to
	// Endpoint/v1/traces); empty records and exports nothing, though an
	// incoming traceparent is still passed on and logged.
	Endpoint string `koanf:"endpoint"`
	// Sample is the share (0..1) of root requests (those without a valid
	// incoming traceparent) that are traced; an incoming sampled flag is
	// always honoured.
	Sample float64 `koanf:"sample"`
	// ServiceName is the service.name of exported spans; empty means
	// server.name.
	ServiceName string `koanf:"service_name"`
	// Timeout bounds one export to the collector.
	Timeout time.Duration `koanf:"timeout"`
	// Queue is how many finished spans may wait for export; beyond it they
	// are dropped and counted, never blocking a request.
	Queue int `koanf:"queue"`
}

// Upstream configures one service hotpath calls ([upstreams.NAME]).
type Upstream struct {
	// URL is the base URL; request paths are appended to its path.
	URL string `koanf:"url"`
	// Timeout bounds one attempt, connecting included; the caller's
	// context deadline bounds the whole call.
	Timeout time.Duration `koanf:"timeout"`
	// MaxConns caps open connections to the upstream; callers over it wait
	// for a free one until their attempt's deadline.
	MaxConns int `koanf:"max_conns"`
	// Retries is how many times an idempotent call is repeated after a
	// connection error or a 502, 503 or 504, with jittered backoff.
	Retries int `koanf:"retries"`
	// BreakerFailures opens the circuit breaker after this many failed
	// attempts in a row: calls then fail at once.
	BreakerFailures int `koanf:"breaker_failures"`
	// BreakerCooldown is how long the breaker stays open before it lets one
	// probe call through.
	BreakerCooldown time.Duration `koanf:"breaker_cooldown"`
}

// DefaultUpstream holds the values of the keys an [upstreams.NAME] table
// leaves out.
func DefaultUpstream() Upstream {
	return Upstream{
		Timeout:         2 * time.Second,
		MaxConns:        64,
		Retries:         2,
		BreakerFailures: 5,
		BreakerCooldown: 5 * time.Second,
	}
}

// Default returns the configuration used when no source says otherwise; it
// matches the repository's config.toml.
func Default() Config {
	return Config{
		Server: Server{
			Addr:            ":8080",
			Name:            "hotpath",
			ReadTimeout:     5 * time.Second,
			WriteTimeout:    5 * time.Second,
			IdleTimeout:     60 * time.Second,
			MaxBodySize:     1 << 20,
			ReadBufferSize:  16 << 10,
			Concurrency:     256 * 1024,
			TrustedProxies:  []string{},
			Compress:        true,
			CompressMinSize: 1024,
		},
		Admin: Admin{Addr: ":9090"},
		DB: DB{
			Driver:            "sqlite",
			DSN:               "data/hotpath.db",
			Timeout:           2 * time.Second,
			ConnMaxLifetime:   time.Hour,
			ConnMaxIdleTime:   30 * time.Minute,
			SQLiteSynchronous: "full",
		},
		Log: Log{
			Level:        "info",
			AccessSample: 0.01,
			Slow:         250 * time.Millisecond,
			AccessBuffer: 4096,
		},
		Shutdown: Shutdown{Drain: 5 * time.Second, Timeout: 20 * time.Second},
		Auth:     Auth{Tokens: []string{}},
		API:      API{IdempotencyTTL: 24 * time.Hour},
		Reload:   Reload{Watch: true},
		Security: Security{TrustedOrigins: []string{}},
		Webhooks: Webhooks{
			URLs:        []string{},
			Retention:   24 * time.Hour,
			Concurrency: 4,
			Timeout:     5 * time.Second,
		},
		Limits:    Limits{AnonymousWrites: ratelimit.Rate{N: 20, Per: time.Minute}},
		Tracing:   Tracing{Sample: 0.01, Timeout: 5 * time.Second, Queue: 2048},
		Upstreams: map[string]Upstream{},
	}
}

// Package process runs one service's life: load its configuration, start
// the logger, open the store, build the server with the service's routes,
// serve, wait for a signal, drain, and stop everything in reverse order.
// The public package describes the service (a Program); this package knows
// nothing of what its routes do.
package process

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/admin"
	"github.com/hotpath/hotpath/internal/auth"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/compress"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/prefork"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/reload"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/router"
	"github.com/hotpath/hotpath/internal/server"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
	"github.com/hotpath/hotpath/internal/webhook"
)

// Program is the service a process runs.
type Program struct {
	// Name is the service's name: the program name in messages, and the
	// environment prefix (upper case, "_"): "notes" reads NOTES_SERVER__ADDR.
	Name string
	// Version is printed by -version and exported as build info.
	Version string
	// Sections are the service's own configuration sections.
	Sections []config.Section
	// Components are the service's migrations, applied after the
	// framework's own.
	Components []store.Component
	// Metrics is the registry the service's own families are already in.
	Metrics *metrics.Registry
	// Mount registers the service's routes on rt.Router and starts the
	// service's own parts, once every collaborator is ready and before
	// anything listens. The stop functions it adds run, last added first,
	// after the listener has stopped and before the store closes.
	Mount func(rt *Runtime) error
}

// Runtime is what Mount gets: the running collaborators.
type Runtime struct {
	Config config.Config
	Log    *slog.Logger
	Store  *store.DB
	Router *router.Router
	Deps   *endpoint.Deps
	Tracer *tracing.Tracer
	// Upstreams are the clients of the [upstreams.NAME] tables, by NAME.
	Upstreams map[string]*upstream.Client
	ready     *admin.Readiness
	parts     []reload.Part
	stops     []func()
}

// Ready adds a readiness check: /readyz fails while check does.
func (rt *Runtime) Ready(name string, check func(ctx context.Context) error) {
	rt.ready.Add(name, check)
}

// OnReload adds a part that applies reloadable keys of the service's own.
func (rt *Runtime) OnReload(p reload.Part) { rt.parts = append(rt.parts, p) }

// OnStop adds a function run at stop, before the store closes.
func (rt *Runtime) OnStop(stop func()) { rt.stops = append(rt.stops, stop) }

// Process is a started service.
type Process struct {
	prog     Program
	cfg      config.Config
	opts     config.Options
	spec     config.Spec
	log      *slog.Logger
	stdout   io.Writer
	stderr   io.Writer
	draining atomic.Bool

	access  *accesslog.Logger
	tracer  *tracing.Tracer
	db      *store.DB
	hooks   *webhook.Dispatcher
	ups     map[string]*upstream.Client
	keys    *idempotency.Pruner
	rt      *Runtime
	reload  *reload.Reloader
	app     *server.Server
	adm     *admin.Server
	handler func(net.Conn) error
}

// ExitError is a failure Run turns into an exit status: 2 for a mistake in
// the configuration or the service's definition, 1 for the rest.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Spec is the configuration layout of prog.
func (prog Program) Spec() config.Spec {
	return config.Spec{Program: prog.Name, EnvPrefix: EnvPrefix(prog.Name), Sections: prog.Sections}
}

// EnvPrefix is the environment prefix of a service: "notes" reads
// NOTES_SERVER__ADDR, "my-api" MY_API_SERVER__ADDR.
func EnvPrefix(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

// Run is a service's main: it returns the exit status, 0 after a clean
// drain, 1 on a runtime failure, 2 on bad configuration.
func Run(prog Program, args, environ []string, stdout, stderr io.Writer) int {
	spec := prog.Spec()
	cfg, opts, err := load(spec, args, environ)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "usage: %s [-config config.toml] [-version] [--section.key=value ...]; every key is documented in config.toml\n", prog.Name)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", prog.Name, err)
		return 2
	case opts.Version:
		fmt.Fprintln(stdout, prog.Name, prog.Version, runtime.Version())
		return 0
	}

	// Catch signals before anything listens: a SIGTERM that arrives while
	// starting must drain, not kill the process.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	// SIGHUP reloads the configuration; caught now, it cannot end the
	// process (its default action) while it starts.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if cfg.Server.Prefork && !prefork.IsChild() {
		return runPrefork(prog, spec, cfg, args, stderr)
	}

	p, err := start(prog, cfg, opts, args, environ, hup, stdout, stderr)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		return 1
	}
	sig := <-signals
	return p.drain(sig, signals)
}

// Start starts prog without signal handling or prefork, for a service run
// inside another program (tests, benchmarks): Stop ends it. Errors are
// *ExitError values whose Code says what Run would have exited with; the
// one-line message is already written to stderr.
func Start(prog Program, args, environ []string, stdout, stderr io.Writer) (*Process, error) {
	cfg, opts, err := load(prog.Spec(), args, environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog.Name, err)
		return nil, &ExitError{Code: 2, Err: err}
	}
	return start(prog, cfg, opts, args, environ, nil, stdout, stderr)
}

// load reads the configuration from every source, at start-up and at
// every reload.
func load(spec config.Spec, args, environ []string) (config.Config, config.Options, error) {
	cfg, opts, err := config.Load(spec, args, environ)
	if prefork.IsChild() {
		// Children share both ports with their siblings.
		cfg.Server.ReusePort = true
	}
	return cfg, opts, err
}

// newLogger is the application log: JSON lines on stderr, with the trace
// ids of a request's context.
func newLogger(level *slog.LevelVar, stderr io.Writer) *slog.Logger {
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})))
}

// runPrefork is the prefork master: it starts one child per CPU and waits.
func runPrefork(prog Program, spec config.Spec, cfg config.Config, args []string, stderr io.Writer) int {
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	log := newLogger(level, stderr)
	log.Info("starting prefork master", "version", prog.Version, "children", runtime.GOMAXPROCS(0))
	if cfg.Security.CSRFSecret == "" {
		// Children inherit the environment: one random key for all of
		// them, or a form served by one child is refused by another.
		warnRandomCSRFSecret(log, spec.EnvPrefix)
		if err := os.Setenv(spec.EnvPrefix+"SECURITY__CSRF_SECRET", hex.EncodeToString(csrf.RandomSecret())); err != nil {
			log.Error("start", "err", fmt.Errorf("share a CSRF key with the prefork children: %w", err))
			return 1
		}
	}
	return prefork.Run(runtime.GOMAXPROCS(0), args, log)
}

// start builds and starts every part, in the order the process's life
// reads: logger, metrics, tracing, store, outbound parts, the service's
// routes, reload, listeners.
func start(prog Program, cfg config.Config, opts config.Options, args, environ []string, hup <-chan os.Signal, stdout, stderr io.Writer) (_ *Process, err error) {
	spec := prog.Spec()
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	log := newLogger(level, stderr)
	p := &Process{prog: prog, cfg: cfg, opts: opts, spec: spec, log: log, stdout: stdout, stderr: stderr}
	failed := func(err error) error {
		log.Error("start", "err", err)
		return &ExitError{Code: 1, Err: err}
	}
	// Whatever started before a failure stops again.
	defer func() {
		if err != nil {
			p.close()
		}
	}()

	if soft := applyMemoryLimit(environ, cgroupMemoryMax); soft > 0 {
		log.Info("GOMEMLIMIT set from the container's memory limit", "bytes", soft)
	}
	log.Info("starting", "version", prog.Version, "config", opts.Path, "config_hash", cfg.Hash(),
		"gomaxprocs", runtime.GOMAXPROCS(0), "gomemlimit", memLimit())

	reg := prog.Metrics
	p.access = accesslog.New(stdout, cfg.Log.AccessBuffer, reg.AccessLogDropped)
	p.access.Start()

	p.tracer, err = tracing.New(cfg.Tracing, cmp.Or(cfg.Tracing.ServiceName, cfg.Server.Name), prog.Version, reg.Set(), log)
	if err != nil {
		return nil, failed(err)
	}
	if p.tracer.Recording() {
		log.Info("tracing", "endpoint", cfg.Tracing.Endpoint, "sample", cfg.Tracing.Sample)
	}

	ready := admin.NewReadiness(&p.draining)
	p.db, err = store.Open(context.Background(), storeOptions(cfg, prog.Components, log))
	if err != nil {
		return nil, failed(err)
	}
	ready.Add("database", p.db.Ping)
	log.Info("database opened", "driver", cfg.DB.Driver)

	// Webhooks are not a readiness dependency: events wait in the outbox
	// while a receiver is down, and requests never wait for delivery. The
	// dispatcher runs without URLs too, idle, so that a reload can add some.
	p.hooks, err = webhook.New(cfg.Webhooks, p.db, p.tracer, reg.Set(), log)
	if err != nil {
		return nil, failed(err)
	}
	p.hooks.Start()
	if len(cfg.Webhooks.URLs) > 0 {
		log.Info("webhook dispatcher started", "urls", len(cfg.Webhooks.URLs), "concurrency", cfg.Webhooks.Concurrency)
	}

	// Like webhooks, upstreams are not readiness dependencies: their
	// breakers fail calls fast while a service is down.
	p.ups, err = upstream.NewAll(cfg.Upstreams, reg.Set())
	if err != nil {
		return nil, failed(err)
	}
	for name := range p.ups {
		log.Info("upstream client ready", "upstream", name)
	}

	// Answers kept for Idempotency-Key retries expire after
	// api.idempotency_ttl; every replica prunes, each batch a short statement.
	p.keys = idempotency.NewPruner(p.db, cfg.API.IdempotencyTTL, reg.Set(), log)
	p.keys.Start()

	deps, err := newDeps(cfg, spec, reg, log)
	if err != nil {
		return nil, failed(err)
	}
	if len(cfg.Auth.AllTokens()) == 0 {
		log.Info("auth.tokens and auth.tokens_file are empty: routes that need a bearer token refuse every request (" + spec.EnvPrefix + "AUTH__TOKENS)")
	}
	log.Info("rate limits", "anonymous_writes", cfg.Limits.AnonymousWrites.String(),
		"token_writes", cfg.Limits.TokenWrites.String(), "reads", cfg.Limits.Reads.String(),
		"trusted_proxies", len(cfg.Server.TrustedProxies))

	ids, err := requestid.NewGenerator()
	if err != nil {
		return nil, failed(fmt.Errorf("build handler: %w", err))
	}
	routes := router.New(reg, log)
	p.rt = &Runtime{Config: cfg, Log: log, Store: p.db, Router: routes, Deps: deps, Tracer: p.tracer, Upstreams: p.ups, ready: ready}
	if err := prog.Mount(p.rt); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			fmt.Fprintf(stderr, "%s: %v\n", prog.Name, ee.Err)
			return nil, err
		}
		return nil, failed(err)
	}
	h := routes.Handler(router.Options{
		IDs:         ids,
		Access:      p.access,
		Sampler:     accesslog.NewSampler(cfg.Log.AccessSample, cfg.Log.Slow),
		MaxInflight: cfg.Server.MaxInflight,
		Draining:    &p.draining,
		Clients:     deps.Clients,
		Reads:       deps.Reads,
		Tracer:      p.tracer,
	})

	parts := append(frameworkParts(live{level: level, routes: routes, deps: deps, db: p.db, hooks: p.hooks, tracer: p.tracer}), p.rt.parts...)
	p.reload, err = reload.New(reload.Options{
		Spec: spec,
		Load: func() (config.Config, error) {
			next, _, err := load(spec, args, environ)
			return next, err
		},
		Running:    cfg,
		ConfigPath: cmp.Or(opts.Path, config.DefaultPath),
		Signals:    hup,
		Metrics:    reg.Set(),
		Log:        log,
	}, parts...)
	if err != nil {
		return nil, failed(err)
	}
	p.reload.Start()

	p.app = server.New(cfg.Server, h, log)
	p.app.OnRefusal(reg.Refused)
	p.adm = admin.New(ready, reg, cfg.Admin.Pprof, log)
	if err := p.adm.Start(cfg.Admin.Addr, prefork.IsChild()); err != nil {
		return nil, p.listenFailed("admin.addr", cfg.Admin.Addr, err)
	}
	ln, err := server.Listen(cfg.Server.Addr, cfg.Server.ReusePort)
	if err != nil {
		return nil, p.listenFailed("server.addr", cfg.Server.Addr, err)
	}
	p.app.Serve(ln)
	log.Info("serving", "addr", p.app.Addr().String(), "admin_addr", p.adm.Addr().String())
	return p, nil
}

// storeOptions turns the [db] section into the store's options.
func storeOptions(cfg config.Config, components []store.Component, log *slog.Logger) store.Options {
	return store.Options{
		Driver:            cfg.DB.Driver,
		DSN:               cfg.DB.DSN,
		Timeout:           cfg.DB.Timeout,
		MaxConns:          cfg.DB.MaxConns,
		ConnMaxLifetime:   cfg.DB.ConnMaxLifetime,
		ConnMaxIdleTime:   cfg.DB.ConnMaxIdleTime,
		SQLiteSynchronous: cfg.DB.SQLiteSynchronous,
		Logger:            log,
		OutboxURLs:        cfg.Webhooks.URLs,
		Components:        components,
	}
}

// newDeps builds what every route shares: the token check, the client
// address finder, the three rate-limit classes, the form protection and
// the compressor.
func newDeps(cfg config.Config, spec config.Spec, reg *metrics.Registry, log *slog.Logger) (*endpoint.Deps, error) {
	clients, err := clientip.New(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	secret := []byte(cfg.Security.CSRFSecret)
	if len(secret) == 0 {
		secret = csrf.RandomSecret()
		warnRandomCSRFSecret(log, spec.EnvPrefix)
	}
	protector, err := csrf.New(secret, cfg.Security.TrustedOrigins, cfg.Security.SecureCookie)
	if err != nil {
		return nil, err
	}
	return &endpoint.Deps{
		Tokens:  auth.NewTokens(cfg.Auth.AllTokens(), spec.EnvPrefix),
		Clients: clients,
		Anonymous: ratelimit.NewClass("anonymous_writes", "writes without a valid bearer token from this address",
			cfg.Limits.AnonymousWrites, reg.Set()),
		TokenWrites: ratelimit.NewClass("token_writes", "writes with this bearer token", cfg.Limits.TokenWrites, reg.Set()),
		Reads:       ratelimit.NewClass("reads", "requests from this address", cfg.Limits.Reads, reg.Set()),
		CSRF:        protector,
		Compress:    compress.New(cfg.Server.Compress, cfg.Server.CompressMinSize, reg.Set()),
		KeyTTL:      cfg.API.IdempotencyTTL,
		Log:         log,
	}, nil
}

// listenFailed reports a listener that could not bind as one plain line on
// stderr naming the key and the address, as configuration mistakes are
// reported, and logs it.
func (p *Process) listenFailed(key, addr string, err error) error {
	fmt.Fprintf(p.stderr, "%s: %s %s: %s\n", p.prog.Name, key, addr, bindReason(err))
	return &ExitError{Code: 1, Err: err}
}

// Addr is the application listener's address.
func (p *Process) Addr() net.Addr { return p.app.Addr() }

// AdminAddr is the admin listener's address.
func (p *Process) AdminAddr() net.Addr { return p.adm.Addr() }

// ServeConn serves one connection through the application listener's
// server and chain, without a listener: for in-process tests and
// benchmarks.
func (p *Process) ServeConn(c net.Conn) error { return p.app.ServeConn(c) }

// drain is the end of Run: after sig, readiness fails and the listener
// keeps serving for shutdown.drain, then in-flight requests get
// shutdown.timeout to finish; a second signal exits at once.
func (p *Process) drain(sig os.Signal, signals <-chan os.Signal) int {
	cfg, log := p.cfg, p.log
	first := time.Now()
	log.Info("draining", "signal", sig.String(), "drain", cfg.Shutdown.Drain.String())
	if sig == syscall.SIGINT && !prefork.IsChild() {
		drainNotice(p.stderr, p.prog.Name, cfg.Shutdown.Drain, cfg.Shutdown.Timeout)
	}
	p.draining.Store(true)
	go func() {
		// A second signal means the operator wants out now.
		for s := range signals {
			if prefork.IsChild() && time.Since(first) < time.Second {
				// A signal to the whole process group (Ctrl-C, systemd)
				// reaches a prefork child twice: directly and from the master.
				continue
			}
			log.Warn("second signal, exiting at once", "signal", s.String())
			flushAccessLog(p.access, time.Second)
			os.Exit(1)
		}
	}()
	time.Sleep(cfg.Shutdown.Drain)

	log.Info("stopping", "timeout", cfg.Shutdown.Timeout.String())
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	status := 0
	if err := p.Stop(stopCtx); err != nil {
		status = 1
	}
	log.Info("stopped", "status", status)
	return status
}

// Stop stops the listeners, waiting for in-flight requests until ctx ends,
// then every other part in reverse order of start. Errors are logged.
func (p *Process) Stop(ctx context.Context) error {
	var errs []error
	if err := p.app.Stop(ctx); err != nil {
		p.log.Error("stop", "err", err)
		errs = append(errs, err)
	}
	// The last requests' spans go out, within tracing.timeout and what is
	// left of shutdown.timeout: a dead collector costs spans, not the exit.
	flushCtx, flushCancel := context.WithTimeout(ctx, p.cfg.Tracing.Timeout)
	defer flushCancel()
	if err := p.tracer.Shutdown(flushCtx); err != nil {
		p.log.Warn("stop", "err", err)
	}
	// The admin listener gets its own short bound: the app's stop may have
	// used up shutdown.timeout, and a scrape in flight is quick.
	admCtx, admCancel := context.WithTimeout(context.Background(), time.Second)
	defer admCancel()
	if err := p.adm.Stop(admCtx); err != nil {
		p.log.Error("stop", "err", err)
		errs = append(errs, err)
	}
	p.close()
	return errors.Join(errs...)
}

// close stops, last started first, every background part that started:
// after the listeners, or after a failed start.
func (p *Process) close() {
	if p.reload != nil {
		p.reload.Stop()
	}
	if p.rt != nil {
		for i := len(p.rt.stops) - 1; i >= 0; i-- {
			p.rt.stops[i]()
		}
	}
	if p.keys != nil {
		p.keys.Stop()
	}
	for _, c := range p.ups {
		c.CloseIdleConnections()
	}
	if p.hooks != nil {
		p.hooks.Stop()
	}
	if p.db != nil {
		if err := p.db.Close(); err != nil {
			p.log.Error("stop database", "err", err)
		}
	}
	if p.access != nil {
		p.access.Stop()
	}
}

// flushAccessLog writes out the queued access-log lines, unless stdout
// blocks for longer than wait: a forced exit must not hang on it.
func flushAccessLog(access *accesslog.Logger, wait time.Duration) {
	done := make(chan struct{})
	go func() {
		access.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

// logLevel reads log.level, which config.Validate has checked.
func logLevel(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name)) // Validate accepts only names slog knows
	return l
}

// warnRandomCSRFSecret says why a random form key is not enough beyond one
// process (or one prefork master's children).
func warnRandomCSRFSecret(log *slog.Logger, envPrefix string) {
	log.Warn("security.csrf_secret is empty: using a random key, so form tokens are valid only in this process; replicas need one shared key (" + envPrefix + "SECURITY__CSRF_SECRET)")
}

// memLimit reports the Go soft memory limit (GOMEMLIMIT), or "none".
func memLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == 1<<63-1 {
		return "none"
	}
	return fmt.Sprintf("%d", l)
}

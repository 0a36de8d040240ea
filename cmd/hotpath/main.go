// Command hotpath is a high-performance HTTP API server. main wires the
// parts together and reads as the process's life: load config, start the
// logger, open the store, build the server, serve, wait for a signal, drain,
// stop everything in reverse order.
package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/admin"
	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/compress"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/prefork"
	"github.com/hotpath/hotpath/internal/reload"
	"github.com/hotpath/hotpath/internal/server"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
	"github.com/hotpath/hotpath/internal/web"
	"github.com/hotpath/hotpath/internal/webhook"
	"github.com/hotpath/hotpath/internal/worldcache"
)

// version is stamped by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs explicit; it returns the exit
// status: 0 after a clean drain, 1 on a runtime failure, 2 on bad config.
func run(args, environ []string, stdout, stderr io.Writer) int {
	spec := config.Spec{Program: "hotpath", EnvPrefix: "HOTPATH_"}
	cfg, opts, err := loadConfig(spec, args, environ)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stderr, "usage: hotpath [-config config.toml] [-version] [--section.key=value ...]; every key is documented in config.toml")
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "hotpath:", err)
		return 2
	case opts.Version:
		fmt.Fprintln(stdout, "hotpath", version, runtime.Version())
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

	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	// Lines logged with a request's context carry its trace_id and span_id.
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})))
	if cfg.Server.Prefork && !prefork.IsChild() {
		log.Info("starting prefork master", "version", version, "children", runtime.GOMAXPROCS(0))
		if cfg.Security.CSRFSecret == "" {
			// Children inherit the environment: one random key for all of
			// them, or a form served by one child is refused by another.
			warnRandomCSRFSecret(log)
			if err := os.Setenv("HOTPATH_SECURITY__CSRF_SECRET", hex.EncodeToString(csrf.RandomSecret())); err != nil {
				log.Error("start", "err", fmt.Errorf("share a CSRF key with the prefork children: %w", err))
				return 1
			}
		}
		return prefork.Run(runtime.GOMAXPROCS(0), args, log)
	}
	if soft := applyMemoryLimit(environ, cgroupMemoryMax); soft > 0 {
		log.Info("GOMEMLIMIT set from the container's memory limit", "bytes", soft)
	}
	log.Info("starting", "version", version, "config", opts.Path, "config_hash", cfg.Hash(),
		"gomaxprocs", runtime.GOMAXPROCS(0), "gomemlimit", memLimit())

	reg := metrics.New(version)
	access := accesslog.New(stdout, cfg.Log.AccessBuffer, reg.AccessLogDropped)
	access.Start()
	defer access.Stop()

	tracer, err := tracing.New(cfg.Tracing, cmp.Or(cfg.Tracing.ServiceName, cfg.Server.Name), version, reg.Set(), log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if tracer.Recording() {
		log.Info("tracing", "endpoint", cfg.Tracing.Endpoint, "sample", cfg.Tracing.Sample)
	}

	var draining atomic.Bool
	ready := admin.NewReadiness(&draining)

	ctx := context.Background()
	db, err := openDatabase(ctx, cfg.DB, cfg.Webhooks.URLs, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	defer closeLogged(log, "database", db.Close)
	ready.Add("database", db.Ping)
	db.SetMaxFortunes(cfg.API.MaxFortunes)
	log.Info("database opened", "driver", cfg.DB.Driver, "max_fortunes", cfg.API.MaxFortunes)

	// Webhooks are not a readiness dependency: events wait in the outbox
	// while a receiver is down, and API requests never wait for delivery.
	// The dispatcher runs without URLs too, idle, so that a reload can add
	// some.
	hooks, err := webhook.New(cfg.Webhooks, db, tracer, reg.Set(), log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	hooks.Start()
	defer hooks.Stop()
	if len(cfg.Webhooks.URLs) > 0 {
		log.Info("webhook dispatcher started", "urls", len(cfg.Webhooks.URLs), "concurrency", cfg.Webhooks.Concurrency)
	}

	// Like webhooks, upstreams are not readiness dependencies: their
	// breakers fail calls fast while a service is down.
	upstreams, err := upstream.NewAll(cfg.Upstreams, reg.Set())
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	for name, c := range upstreams {
		defer c.CloseIdleConnections()
		log.Info("upstream client ready", "upstream", name)
	}

	// Answers kept for Idempotency-Key retries expire after
	// api.idempotency_ttl; every replica prunes, each batch a short statement.
	keys := idempotency.NewPruner(db, cfg.API.IdempotencyTTL, reg.Set(), log)
	keys.Start()
	defer keys.Stop()

	cache := worldcache.New()
	cache.Start(db, cfg.DB.Timeout, time.Second, cfg.DB.CacheRefresh, log)
	defer cache.Stop()
	ready.Add("world cache", cache.Ready)

	secret := []byte(cfg.Security.CSRFSecret)
	if len(secret) == 0 {
		secret = csrf.RandomSecret()
		warnRandomCSRFSecret(log)
	}
	protector, err := csrf.New(secret, cfg.Security.TrustedOrigins, cfg.Security.SecureCookie)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if len(cfg.Auth.AllTokens()) == 0 {
		log.Info("auth.tokens and auth.tokens_file are empty: writes through /api/v1 are refused (HOTPATH_AUTH__TOKENS)")
	}

	limits, reads, err := newLimits(cfg, reg)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info("rate limits", "anonymous_writes", cfg.Limits.AnonymousWrites.String(),
		"token_writes", cfg.Limits.TokenWrites.String(), "reads", cfg.Limits.Reads.String(),
		"trusted_proxies", len(cfg.Server.TrustedProxies))

	writes := api.New(db, cache, cfg.Auth.AllTokens(), limits, cfg.DB.Timeout, cfg.API.IdempotencyTTL, log)
	h, routes, err := buildHandler(cfg, endpoints{
		db:        handler.NewDB(db, cache, cfg.DB.Timeout, log),
		api:       writes,
		form:      web.NewForm(db, protector, limits, cfg.DB.Timeout, log),
		upstreams: upstreams,
		limits:    limits,
		reads:     reads,
		compress:  compress.New(cfg.Server.Compress, cfg.Server.CompressMinSize, reg.Set()),
	}, reg, access, tracer, &draining, log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}

	reloader, err := reload.New(reload.Options{
		Spec: spec,
		Load: func() (config.Config, error) {
			next, _, err := loadConfig(spec, args, environ)
			return next, err
		},
		Running:    cfg,
		ConfigPath: cmp.Or(opts.Path, config.DefaultPath),
		Signals:    hup,
		Metrics:    reg.Set(),
		Log:        log,
	}, reloadParts(live{level: level, routes: routes, api: writes, csrf: protector, limits: limits, reads: reads, db: db, hooks: hooks, tracer: tracer})...)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	reloader.Start()
	defer reloader.Stop()

	app := server.New(cfg.Server, h, log)
	app.OnRefusal(reg.Refused)

	adm := admin.New(ready, reg, cfg.Admin.Pprof, log)
	if err := adm.Start(cfg.Admin.Addr, prefork.IsChild()); err != nil {
		return listenFailed(stderr, "admin.addr", cfg.Admin.Addr, err)
	}
	ln, err := server.Listen(cfg.Server.Addr, cfg.Server.ReusePort)
	if err != nil {
		return listenFailed(stderr, "server.addr", cfg.Server.Addr, err)
	}
	app.Serve(ln)
	log.Info("serving", "addr", app.Addr().String(), "admin_addr", adm.Addr().String())

	sig := <-signals
	first := time.Now()
	log.Info("draining", "signal", sig.String(), "drain", cfg.Shutdown.Drain.String())
	if sig == syscall.SIGINT && !prefork.IsChild() {
		drainNotice(stderr, cfg.Shutdown.Drain, cfg.Shutdown.Timeout)
	}
	draining.Store(true)
	go func() {
		// A second signal means the operator wants out now.
		for s := range signals {
			if prefork.IsChild() && time.Since(first) < time.Second {
				// A signal to the whole process group (Ctrl-C, systemd)
				// reaches a prefork child twice: directly and from the master.
				continue
			}
			log.Warn("second signal, exiting at once", "signal", s.String())
			flushAccessLog(access, time.Second)
			os.Exit(1)
		}
	}()
	time.Sleep(cfg.Shutdown.Drain)

	log.Info("stopping", "timeout", cfg.Shutdown.Timeout.String())
	stopCtx, cancel := context.WithTimeout(ctx, cfg.Shutdown.Timeout)
	defer cancel()
	status := 0
	if err := app.Stop(stopCtx); err != nil {
		log.Error("stop", "err", err)
		status = 1
	}
	// The last requests' spans go out, within tracing.timeout and what is
	// left of shutdown.timeout: a dead collector costs spans, not the exit.
	flushCtx, flushCancel := context.WithTimeout(stopCtx, cfg.Tracing.Timeout)
	defer flushCancel()
	if err := tracer.Shutdown(flushCtx); err != nil {
		log.Warn("stop", "err", err)
	}
	// The admin listener gets its own short bound: the app's stop may have
	// used up shutdown.timeout, and a scrape in flight is quick.
	admCtx, admCancel := context.WithTimeout(ctx, time.Second)
	defer admCancel()
	if err := adm.Stop(admCtx); err != nil {
		log.Error("stop", "err", err)
		status = 1
	}
	log.Info("stopped", "status", status)
	return status
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

// loadConfig reads the configuration from every source, at start-up and
// at every reload.
func loadConfig(spec config.Spec, args, environ []string) (config.Config, config.Options, error) {
	cfg, opts, err := config.Load(spec, args, environ)
	if prefork.IsChild() {
		// Children share both ports with their siblings.
		cfg.Server.ReusePort = true
	}
	return cfg, opts, err
}

// logLevel reads log.level, which config.Validate has checked.
func logLevel(name string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(name)) // Validate accepts only names slog knows
	return l
}

// warnRandomCSRFSecret says why a random form key is not enough beyond one
// process (or one prefork master's children).
func warnRandomCSRFSecret(log *slog.Logger) {
	log.Warn("security.csrf_secret is empty: using a random key, so form tokens are valid only in this process; replicas need one shared key (HOTPATH_SECURITY__CSRF_SECRET)")
}

// memLimit reports the Go soft memory limit (GOMEMLIMIT), or "none".
func memLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == 1<<63-1 {
		return "none"
	}
	return fmt.Sprintf("%d", l)
}

// closeLogged runs a stop function at exit and logs its error.
func closeLogged(log *slog.Logger, what string, stop func() error) {
	if err := stop(); err != nil {
		log.Error("stop "+what, "err", err)
	}
}

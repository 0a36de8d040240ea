package main

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/compress"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/requestid"
	"github.com/hotpath/hotpath/internal/router"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
	"github.com/hotpath/hotpath/internal/web"
)

// endpoints are the handler sets the routes point to.
type endpoints struct {
	db   *handler.DB
	api  *api.API
	form *web.Form
	// upstreams are the clients of the [upstreams.NAME] tables, by NAME,
	// for handlers that call another service; the built-in ones call none.
	upstreams map[string]*upstream.Client
	// limits holds the client address finder and the write limits, which
	// the API and the form apply; reads is limits.reads, which the chain
	// applies. Zero values limit nothing.
	limits api.Limits
	reads  *ratelimit.Class
	// compress wraps the routes whose answers can be large; nil when
	// server.compress is off.
	compress *compress.Compressor
}

// newLimits builds the rate limits of [limits] (package ratelimit) and the
// client address finder they key on.
func newLimits(cfg config.Config, reg *metrics.Registry) (api.Limits, *ratelimit.Class, error) {
	clients, err := clientip.New(cfg.Server.TrustedProxies)
	if err != nil {
		return api.Limits{}, nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	l := api.Limits{
		Clients: clients,
		Anonymous: ratelimit.NewClass("anonymous_writes", "writes without a valid bearer token from this address",
			cfg.Limits.AnonymousWrites, reg.Set()),
		Token:              ratelimit.NewClass("token_writes", "writes with this bearer token", cfg.Limits.TokenWrites, reg.Set()),
		FortuneCapRefusals: reg.FortuneCapRefusals,
	}
	return l, ratelimit.NewClass("reads", "requests from this address", cfg.Limits.Reads, reg.Set()), nil
}

// registerRoutes lists every application endpoint: one line each.
// Routes whose answers can be large are wrapped in z, which compresses
// them for clients that accept it; the small ones (/plaintext, /json, a
// single World) are not, and pay nothing.
func registerRoutes(r *router.Router, e endpoints) {
	z := e.compress
	r.GET("/plaintext", handler.Plaintext)
	r.GET("/json", handler.JSON)
	r.GET("/db", e.db.World)
	r.GET("/queries", z.Wrap(e.db.Queries))
	r.GETWithoutHEAD("/updates", z.Wrap(e.db.Updates))
	r.GET("/fortunes", web.HTML(z.Wrap(e.db.Fortunes)))
	r.GET("/cached-queries", z.Wrap(e.db.CachedQueries))

	r.GET("/api/v1/worlds/{id}", e.api.GetWorld)
	r.PUT("/api/v1/worlds/{id}", e.api.PutWorld)
	r.GET("/api/v1/fortunes", z.Wrap(e.api.ListFortunes))
	r.POST("/api/v1/fortunes", z.Wrap(e.api.CreateFortune))
	r.GET("/api/v1/fortunes/{id}", z.Wrap(e.api.GetFortune))
	r.DELETE("/api/v1/fortunes/{id}", e.api.DeleteFortune)
	r.GET("/api/v1/openapi.json", z.Wrap(e.api.OpenAPI))

	r.GET("/fortunes/new", web.HTML(e.form.New))
	r.POST("/fortunes", web.HTML(e.form.Create))
}

// buildHandler assembles the application listener's handler: the routes
// inside the request chain. The router is returned for reloads.
func buildHandler(cfg config.Config, e endpoints, reg *metrics.Registry, access *accesslog.Logger, tracer *tracing.Tracer, draining *atomic.Bool, log *slog.Logger) (fasthttp.RequestHandler, *router.Router, error) {
	ids, err := requestid.NewGenerator()
	if err != nil {
		return nil, nil, fmt.Errorf("build handler: %w", err)
	}
	r := router.New(reg, log)
	registerRoutes(r, e)
	return r.Handler(router.Options{
		IDs:         ids,
		Access:      access,
		Sampler:     accesslog.NewSampler(cfg.Log.AccessSample, cfg.Log.Slow),
		MaxInflight: cfg.Server.MaxInflight,
		Draining:    draining,
		Clients:     e.limits.Clients,
		Reads:       e.reads,
		Tracer:      tracer,
	}), r, nil
}

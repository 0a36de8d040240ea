package process

import (
	"log/slog"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/reload"
	"github.com/hotpath/hotpath/internal/router"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/webhook"
)

// live are the running components a reload of a framework key changes.
type live struct {
	level  *slog.LevelVar
	routes *router.Router
	deps   *endpoint.Deps
	db     *store.DB
	hooks  *webhook.Dispatcher
	tracer *tracing.Tracer
}

// frameworkParts says which component takes which reloadable framework
// key, one Part each. A new reloadable key gets its line here; the
// reloader refuses to start while a reloadable key has no part.
func frameworkParts(l live) []reload.Part {
	return []reload.Part{
		{
			Keys: []string{"log.level"},
			Prepare: func(next config.Config) (func(), error) {
				return func() { l.level.Set(logLevel(next.Log.Level)) }, nil
			},
		},
		{
			Keys: []string{"log.access_sample", "log.slow", "server.max_inflight"},
			Prepare: func(next config.Config) (func(), error) {
				sampler := accesslog.NewSampler(next.Log.AccessSample, next.Log.Slow)
				return func() { l.routes.Reconfigure(sampler, next.Server.MaxInflight) }, nil
			},
		},
		{
			Keys: []string{"auth.tokens", "auth.tokens_file"},
			Prepare: func(next config.Config) (func(), error) {
				return func() { l.deps.Tokens.SetTokens(next.Auth.AllTokens()) }, nil
			},
		},
		{
			Keys: []string{"server.trusted_proxies"},
			Prepare: func(next config.Config) (func(), error) {
				if _, err := clientip.ParsePrefixes(next.Server.TrustedProxies); err != nil {
					return nil, &config.Error{Key: "server.trusted_proxies", Reason: err.Error()}
				}
				// Parsed above: SetTrusted cannot fail on the same list.
				return func() { _ = l.deps.Clients.SetTrusted(next.Server.TrustedProxies) }, nil
			},
		},
		{
			Keys: []string{"limits.anonymous_writes", "limits.token_writes", "limits.reads"},
			Prepare: func(next config.Config) (func(), error) {
				return func() {
					l.deps.Anonymous.SetRate(next.Limits.AnonymousWrites)
					l.deps.TokenWrites.SetRate(next.Limits.TokenWrites)
					l.deps.Reads.SetRate(next.Limits.Reads)
				}, nil
			},
		},
		{
			Keys: []string{"tracing.sample"},
			Prepare: func(next config.Config) (func(), error) {
				return func() { l.tracer.SetSample(next.Tracing.Sample) }, nil
			},
		},
		{
			Keys: []string{"security.trusted_origins"},
			Prepare: func(next config.Config) (func(), error) {
				origins, err := csrf.ParseOrigins(next.Security.TrustedOrigins)
				if err != nil {
					return nil, &config.Error{Key: "security.trusted_origins", Reason: err.Error()}
				}
				return func() { l.deps.CSRF.SetTrusted(origins) }, nil
			},
		},
		{
			Keys: []string{"webhooks.urls", "webhooks.secret"},
			Prepare: func(next config.Config) (func(), error) {
				return l.hooks.Reconfigure(next.Webhooks.URLs, next.Webhooks.Secret)
			},
		},
	}
}

package main

import (
	"log/slog"

	"github.com/hotpath/hotpath/internal/accesslog"
	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/clientip"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/ratelimit"
	"github.com/hotpath/hotpath/internal/reload"
	"github.com/hotpath/hotpath/internal/router"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/webhook"
)

// live are the running components a reload changes.
type live struct {
	level  *slog.LevelVar
	routes *router.Router
	api    *api.API
	csrf   *csrf.Protector
	limits api.Limits
	reads  *ratelimit.Class
	db     database
	hooks  *webhook.Dispatcher
	tracer *tracing.Tracer
}

// reloadParts says which component takes which reloadable framework key
// (config.Spec.ReloadableKeys), one Part each. A new reloadable key gets
// its line here.
func reloadParts(l live) []reload.Part {
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
				return func() { l.api.SetTokens(next.Auth.AllTokens()) }, nil
			},
		},
		{
			Keys: []string{"server.trusted_proxies"},
			Prepare: func(next config.Config) (func(), error) {
				if _, err := clientip.ParsePrefixes(next.Server.TrustedProxies); err != nil {
					return nil, &config.Error{Key: "server.trusted_proxies", Reason: err.Error()}
				}
				// Parsed above: SetTrusted cannot fail on the same list.
				return func() { _ = l.routes.Clients().SetTrusted(next.Server.TrustedProxies) }, nil
			},
		},
		{
			Keys: []string{"limits.anonymous_writes", "limits.token_writes", "limits.reads"},
			Prepare: func(next config.Config) (func(), error) {
				return func() {
					l.limits.Anonymous.SetRate(next.Limits.AnonymousWrites)
					l.limits.Token.SetRate(next.Limits.TokenWrites)
					l.reads.SetRate(next.Limits.Reads)
				}, nil
			},
		},
		{
			Keys: []string{"api.max_fortunes"},
			Prepare: func(next config.Config) (func(), error) {
				return func() { l.db.SetMaxFortunes(next.API.MaxFortunes) }, nil
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
				return func() { l.csrf.SetTrusted(origins) }, nil
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

// Command hotpath is the reference service built on the hotpath platform
// (package github.com/hotpath/hotpath): the TechEmpower benchmark
// endpoints, the Worlds and Fortunes REST resources under /api/v1 with
// their OpenAPI document, and a CSRF-protected HTML form. It uses the
// public package only, as any other service would.
package main

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/hotpath/hotpath"
)

// version is stamped by the Makefile with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(newApp().Main())
}

// apiConfig is the reference service's keys of the [api] section.
type apiConfig struct {
	// MaxFortunes caps the fortunes stored: a create beyond it is refused
	// with 409 and stores nothing, so /fortunes stays bounded.
	MaxFortunes int `koanf:"max_fortunes" reload:"true"`
}

// Validate checks api.max_fortunes.
func (c *apiConfig) Validate() error {
	if c.MaxFortunes < 1 || c.MaxFortunes > 1<<31-1 {
		return hotpath.ConfigError("max_fortunes", "must be from 1 to 2147483647")
	}
	return nil
}

// dbConfig is the reference service's keys of the [db] section.
type dbConfig struct {
	// CacheRefresh is how often the /cached-queries cache reloads every
	// World (0 = never: only this process's own writes reach it).
	CacheRefresh time.Duration `koanf:"cache_refresh"`
}

// Validate checks db.cache_refresh.
func (c *dbConfig) Validate() error {
	if c.CacheRefresh < 0 {
		return hotpath.ConfigError("cache_refresh", "must not be negative, got "+c.CacheRefresh.String())
	}
	return nil
}

// service is the reference service's state: its data, the World cache
// behind /cached-queries, its settings and its own metric.
type service struct {
	data     data
	cache    *worldCache
	api      *hotpath.Setting[apiConfig]
	db       *hotpath.Setting[dbConfig]
	refusals *hotpath.Counter
	log      *slog.Logger
}

// newApp declares the reference service: its sections, migrations,
// metric, the World cache's life, and every route, one line each.
// opts are for tests, which send the logs elsewhere.
func newApp(opts ...hotpath.Option) *hotpath.App {
	app := hotpath.New("hotpath", append([]hotpath.Option{hotpath.Version(version), hotpath.Info("hotpath API",
		"Worlds and Fortunes as JSON. Reads are open; writes (PUT, POST, DELETE) need `Authorization: Bearer <token>` "+
			"with a token from `auth.tokens`. Errors are RFC 9457 problem details. Reads carry a strong ETag and answer "+
			"If-None-Match with 304; PUT and DELETE honour If-Match (412 when stale). Writes accept an Idempotency-Key: "+
			"a retry gets the first answer again, byte for byte.")}, opts...)...)
	s := &service{
		api:   hotpath.Section(app, "api", apiConfig{MaxFortunes: 10000}),
		db:    hotpath.Section(app, "db", dbConfig{CacheRefresh: 5 * time.Second}),
		cache: newWorldCache(),
		refusals: app.Counter("fortune_cap_refusals_total",
			"Creates of a fortune (API or HTML form) refused with 409 because api.max_fortunes fortunes were stored; nothing was stored."),
	}
	s.data, s.log = data{db: app.DB()}, app.Log()
	app.Migrations("reference", migrations())
	app.OnStart(s.startCache)
	app.OnStop(s.cache.Stop)
	app.Ready("world cache", s.cache.Ready)
	s.routes(app)
	return app
}

// routes registers every endpoint with what it requires.
func (s *service) routes(app *hotpath.App) {
	// The benchmark endpoints (tfb.go): small answers, no compression.
	app.Handle(http.MethodGet, "/plaintext", plaintext)
	app.Handle(http.MethodGet, "/json", jsonHello)
	app.Handle(http.MethodGet, "/db", s.oneWorld)
	app.Handle(http.MethodGet, "/queries", s.queries, hotpath.Compress(true))
	app.Handle(http.MethodGet, "/updates", s.updates, hotpath.Compress(true), hotpath.NoHead())
	app.Handle(http.MethodGet, "/fortunes", s.fortunesPage, hotpath.Compress(true), hotpath.HTML())
	app.Handle(http.MethodGet, "/cached-queries", s.cachedQueries, hotpath.Compress(true))

	// The REST resources (worlds.go, fortunes.go).
	hotpath.GET(app, "/api/v1/worlds/{id}", s.getWorld, hotpath.ETag(worldTag), hotpath.Compress(false),
		hotpath.Summary("Read one World"), hotpath.Tags("worlds"))
	hotpath.PUT(app, "/api/v1/worlds/{id}", s.putWorld, hotpath.Auth(), hotpath.Idempotent(), hotpath.IfMatch(),
		hotpath.ETag(worldTag), hotpath.Compress(false),
		hotpath.Summary("Set a World's randomNumber"), hotpath.Tags("worlds"),
		hotpath.Description("Also updates the in-memory cache behind /cached-queries."))
	hotpath.GET(app, "/api/v1/fortunes", s.listFortunes, hotpath.ETag(pageTag),
		hotpath.Summary("List fortunes, a page at a time"), hotpath.Tags("fortunes"))
	hotpath.POST(app, "/api/v1/fortunes", s.createFortune, hotpath.Auth(), hotpath.Idempotent(),
		hotpath.ETag(fortuneTag), hotpath.Problems(http.StatusConflict),
		hotpath.Summary("Add a fortune"), hotpath.Tags("fortunes"))
	hotpath.GET(app, "/api/v1/fortunes/{id}", s.getFortune, hotpath.ETag(fortuneTag),
		hotpath.Summary("Read one fortune"), hotpath.Tags("fortunes"))
	hotpath.DELETE(app, "/api/v1/fortunes/{id}", s.deleteFortune, hotpath.Auth(), hotpath.Idempotent(), hotpath.IfMatch(),
		hotpath.Summary("Delete a fortune"), hotpath.Tags("fortunes"))
	app.OpenAPI("/api/v1/openapi.json")

	// The HTML form (form.go).
	app.Handle(http.MethodGet, "/fortunes/new", s.newFortuneForm, hotpath.HTML(), hotpath.CSRF())
	app.Handle(http.MethodPost, "/fortunes", s.postFortuneForm, hotpath.Public(), hotpath.CSRF(), hotpath.HTML())
}

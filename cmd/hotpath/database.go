package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/web"
	"github.com/hotpath/hotpath/internal/webhook"
	"github.com/hotpath/hotpath/internal/worldcache"
)

// database is what main needs of either store driver.
type database interface {
	handler.Store
	api.Store
	web.Store
	idempotency.Store
	worldcache.Loader
	webhook.Outbox
	Ping(ctx context.Context) error
	// SetMaxFortunes sets api.max_fortunes, at start and on reload.
	SetMaxFortunes(n int)
	Close() error
}

// openDatabase opens the configured driver. PostgreSQL being down is not an
// error: the store retries in the background and readiness reports it.
// Changes record webhook events for outboxURLs (webhooks.urls), if any.
func openDatabase(ctx context.Context, cfg config.DB, outboxURLs []string, log *slog.Logger) (database, error) {
	o := store.Options{
		Driver:            cfg.Driver,
		DSN:               cfg.DSN,
		Timeout:           cfg.Timeout,
		MaxConns:          cfg.MaxConns,
		ConnMaxLifetime:   cfg.ConnMaxLifetime,
		ConnMaxIdleTime:   cfg.ConnMaxIdleTime,
		SQLiteSynchronous: cfg.SQLiteSynchronous,
		Logger:            log,
		OutboxURLs:        outboxURLs,
		Components:        []store.Component{store.ReferenceComponent()},
	}
	switch cfg.Driver {
	case "postgres":
		return store.OpenPostgres(ctx, o)
	case "sqlite":
		return store.OpenSQLite(ctx, o)
	}
	return nil, fmt.Errorf("open database: unknown db.driver %q", cfg.Driver) // config.Validate prevents this
}

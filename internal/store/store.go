// Package store is the data layer of a service: one API over SQLite
// (embedded, the default) or PostgreSQL. A service brings its tables as a
// Component with migrations for each driver, reads with QueryRow, Query and
// SendBatch, and writes with Exec or Write, whose one transaction carries
// the change, its webhook events (Tx.Emit, see outbox.go) and the answer
// to its Idempotency-Key (see idempotency.go). SQL is written once, with
// $1, $2 ... placeholders, for both drivers.
//
// The store knows nothing of HTTP: every error of either driver is
// classified once, as ErrNotFound, ErrUnavailable, ErrInvalid or
// ErrConflict, and callers turn those into status codes.
package store

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Options configures Open.
type Options struct {
	// Driver is "sqlite" or "postgres" (db.driver).
	Driver string
	// DSN is the SQLite file path (its directory is created) or a
	// postgres:// URL (db.dsn).
	DSN string
	// Timeout bounds every call whose context has no earlier deadline
	// (db.timeout). It is also SQLite's busy_timeout and PostgreSQL's
	// statement_timeout, lock_timeout, idle_in_transaction_session_timeout
	// and (at least 3s) connect_timeout. Migrations at start get
	// MigrationTimeout instead. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxConns caps the connection pool; 0 picks GOMAXPROCS readers for
	// SQLite and 4*GOMAXPROCS connections for PostgreSQL.
	MaxConns int
	// ConnMaxLifetime and ConnMaxIdleTime recycle pooled connections;
	// zero keeps the driver's default.
	ConnMaxLifetime, ConnMaxIdleTime time.Duration
	// SQLiteSynchronous is SQLite's synchronous pragma on every connection
	// that writes (db.sqlite_synchronous): "full" (the default when empty)
	// syncs the WAL at every commit, so a commit that returned survives a
	// power loss; "normal" syncs only at checkpoints, so the last commits
	// can be lost with the node (never with the process alone).
	SQLiteSynchronous string
	// Logger receives migration and connectivity events; nil discards them.
	Logger *slog.Logger
	// OutboxURLs are the webhook receivers (webhooks.urls). When there are
	// any, Tx.Emit records one outbox row per URL in the transaction that
	// makes the change (see outbox.go); when there are none it records
	// nothing and pays nothing. SetOutboxURLs changes them while the store
	// is open.
	OutboxURLs []string
	// Components are the owners of tables whose migrations are applied at
	// open, in this order, after the framework's own (see migrate.go).
	Components []Component
}

// DefaultTimeout is used when Options.Timeout is zero; it matches the
// db.timeout default.
const DefaultTimeout = 2 * time.Second

// withTimeout applies d to ctx unless the caller already set a deadline,
// so no call can wait forever on a dead database. The cancel function it
// returns for a ctx with a deadline is a static no-op: no allocation.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// contextDone reports whether err comes from a cancelled or expired context.
func contextDone(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// db.system.name of the two drivers, for their spans.
const (
	sqliteSystem   = "sqlite"
	postgresSystem = "postgresql"
)

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

func orDefault(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

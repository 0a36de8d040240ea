package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// minConnectTimeout is the least time a new connection gets to be set up.
const minConnectTimeout = 3 * time.Second

// postgresDB is the PostgreSQL driver over a pgx pool. It starts even when
// the database is down: calls answer ErrUnavailable until a background
// goroutine has migrated the schema, and the pool reconnects on its own
// after an outage.
type postgresDB struct {
	pool  *pgxpool.Pool
	ready atomic.Bool
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// openPostgres builds the pool for o.DSN and applies the migrations, in
// the background if the database cannot be reached now.
func openPostgres(ctx context.Context, o Options) (*DB, error) {
	cfg, err := poolConfig(o)
	if err != nil {
		return nil, err
	}
	plan, err := loadComponents("postgres", o.Components)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := newDB("postgres", postgresSystem, o)
	p := &postgresDB{pool: pool, stop: func() {}}
	db.pg = p

	mctx, cancel := withTimeout(ctx, MigrationTimeout)
	err = migrate(mctx, "postgres", postgresMigrations(pool), plan, db.log)
	cancel()
	switch {
	case err == nil:
		p.ready.Store(true)
		return db, nil
	case errors.Is(err, ErrForeignDatabase):
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.log.Warn("database not ready, retrying in the background", "driver", "postgres", "error", err)
	bg, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.wg.Add(1)
	go p.migrateUntilReady(bg, plan, db)
	return db, nil
}

// poolConfig turns Options into a pgxpool configuration. Settings given in
// the DSN win over the ones derived from o.Timeout.
func poolConfig(o Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse db.dsn: %w", err)
	}
	cc := cfg.ConnConfig
	// The simple protocol interpolates arguments on the client; every
	// statement here relies on server-side binding.
	if cc.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol {
		return nil, errors.New("open postgres: db.dsn must not set default_query_exec_mode=simple_protocol")
	}
	timeout := orDefault(o.Timeout)
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	// The server enforces the same bound as the client: a query abandoned by
	// a cancelled context does not keep running, holding locks.
	for _, k := range []string{"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"} {
		if _, ok := cc.RuntimeParams[k]; !ok {
			cc.RuntimeParams[k] = ms
		}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "hotpath"
	}
	// A new backend (fork, authentication, TLS) may take longer than a
	// request may wait. Requests are still bounded by their context:
	// pgxpool finishes a connect in the background when its caller gives up.
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = max(timeout, minConnectTimeout)
	}
	cfg.MaxConns = int32(o.MaxConns)
	if o.MaxConns <= 0 {
		cfg.MaxConns = int32(4 * runtime.GOMAXPROCS(0))
	}
	if o.ConnMaxLifetime > 0 {
		cfg.MaxConnLifetime = o.ConnMaxLifetime
	}
	if o.ConnMaxIdleTime > 0 {
		cfg.MaxConnIdleTime = o.ConnMaxIdleTime
	}
	return cfg, nil
}

// migrateUntilReady retries the migration with capped exponential backoff
// until it succeeds or close is called.
func (p *postgresDB) migrateUntilReady(ctx context.Context, plan []componentMigrations, db *DB) {
	defer p.wg.Done()
	wait := 100 * time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mctx, cancel := context.WithTimeout(ctx, MigrationTimeout)
		err := migrate(mctx, "postgres", postgresMigrations(p.pool), plan, db.log)
		cancel()
		if err == nil {
			p.ready.Store(true)
			db.log.Info("database ready", "driver", "postgres")
			return
		}
		wait = min(2*wait, 5*time.Second)
		if errors.Is(err, ErrForeignDatabase) {
			// Only whoever owns the database can settle this; say so loudly.
			db.log.Error("database not usable", "driver", "postgres", "retry_in", wait, "error", err)
		} else {
			db.log.Warn("database not ready", "driver", "postgres", "retry_in", wait, "error", err)
		}
		t.Reset(wait)
	}
}

// close stops the background migration, if still running, and closes the
// pool, waiting for connections in use to be returned.
func (p *postgresDB) close() {
	p.stop()
	p.wg.Wait()
	p.pool.Close()
}

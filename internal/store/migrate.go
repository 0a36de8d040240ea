package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are plain SQL files named NNNN_name.sql, one directory per
// driver, applied in version order and recorded in schema_migrations.
//
//go:embed migrations
var migrationFiles embed.FS

// MigrationTimeout bounds applying the migrations at start, which may take
// longer than db.timeout allows a request.
const MigrationTimeout = time.Minute

// migration is one versioned SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the pg_advisory_xact_lock key that serialises replicas
// migrating one PostgreSQL database at the same time ("hotpath" in ASCII).
const migrationLockKey = 0x686f7470617468

// loadMigrations reads the migrations of one driver in version order.
func loadMigrations(driver string) ([]migration, error) {
	dir := path.Join("migrations", driver)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	ms := make([]migration, 0, len(entries))
	for _, e := range entries { // ReadDir sorts by name, and names start with the zero-padded version
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_name.sql", dir, e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s/%s: %w", dir, e.Name(), err)
		}
		if len(ms) > 0 && ms[len(ms)-1].version >= v {
			return nil, fmt.Errorf("migration %s/%s: version %d is not above %d", dir, e.Name(), v, ms[len(ms)-1].version)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrateSQLite applies missing migrations on the writer connection. The
// writer begins transactions IMMEDIATE, so two processes opening one file
// take turns instead of both applying a migration.
func migrateSQLite(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := func() (err error) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			// After Commit this is a no-op returning ErrTxDone; before, it
			// releases the writer on every early return.
			defer func() { err = errors.Join(err, ignoreDone(tx.Rollback())) }()
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER PRIMARY KEY,
				name       TEXT NOT NULL,
				applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
				return err
			}
			var applied bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version).Scan(&applied); err != nil || applied {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			log.Info("migration applied", "driver", "sqlite", "version", m.version, "name", m.name)
			return nil
		}()
		if err != nil {
			return fmt.Errorf("migrate sqlite to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// migratePostgres applies missing migrations, each in its own transaction
// holding an advisory lock, so replicas starting together apply each
// migration exactly once.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	ms, err := loadMigrations("postgres")
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied := false
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// db.timeout suits requests, not seeding a table or waiting for
			// another replica's migration, so lift it for this transaction.
			limit := strconv.FormatInt(MigrationTimeout.Milliseconds(), 10)
			if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true),
				set_config('idle_in_transaction_session_timeout', $1, true)`, limit); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.version).Scan(&done); err != nil || done {
				return err
			}
			// Without arguments pgx sends the file over the simple protocol,
			// which is what allows several statements in one Exec. The text
			// is embedded at build time; no input ever reaches it.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
			applied = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate postgres to version %d (%s): %w", m.version, m.name, err)
		}
		if applied {
			log.Info("migration applied", "driver", "postgres", "version", m.version, "name", m.name)
		}
	}
	return nil
}

// ignoreDone drops the error Rollback returns after the transaction has
// already ended (for example when its context expired).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

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

// Migrations belong to components. Each component owns its tables and
// brings their migrations as plain SQL files, one directory per driver:
// sqlite/NNNN_name.sql and postgres/NNNN_name.sql. Versions count per
// component; hotpath_migrations records (component, version), so two
// components may both have a 0001. The framework's own tables (the
// webhook outbox and the idempotency answers) are the component
// "hotpath", applied before every other; the others follow in the order
// Options.Components lists them.

// Component is one owner of tables: its migrations are the files
// sqlite/NNNN_name.sql and postgres/NNNN_name.sql of FS (an embed.FS
// sub-tree or os.DirFS). A released file must never change: a database
// that applied it will not apply it again.
type Component struct {
	// Name identifies the component in hotpath_migrations and in the
	// logs: letters, digits, '_', '-' and '.'. "hotpath" is the framework's.
	Name string
	// FS holds the sqlite/ and postgres/ directories.
	FS fs.FS
}

// frameworkComponent names the framework's own migrations.
const frameworkComponent = "hotpath"

// frameworkFiles are the migrations of the outbox and idempotency tables.
// Their versions (3, 4, 5) are the ones they had when every table shared
// one sequence, so databases of that time can be upgraded in place.
//
//go:embed migrations
var frameworkFiles embed.FS

// MigrationTimeout bounds applying the migrations at start, which may take
// longer than db.timeout allows a request.
const MigrationTimeout = time.Minute

// migration is one versioned SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// componentMigrations are one component's migrations for one driver, in
// version order.
type componentMigrations struct {
	component string
	ms        []migration
}

// migrationLockKey is the pg_advisory_xact_lock key that serialises replicas
// migrating one PostgreSQL database at the same time ("hotpath" in ASCII).
const migrationLockKey = 0x686f7470617468

// loadComponents reads the migrations of the framework and then of comps,
// for driver, in the order they are applied.
func loadComponents(driver string, comps []Component) ([]componentMigrations, error) {
	framework, err := fs.Sub(frameworkFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read framework migrations: %w", err)
	}
	all := append([]Component{{Name: frameworkComponent, FS: framework}}, comps...)
	seen := map[string]bool{}
	plan := make([]componentMigrations, 0, len(all))
	for i, c := range all {
		switch {
		case !validComponentName(c.Name):
			return nil, fmt.Errorf("component %q: a name is letters, digits, '_', '-' and '.'", c.Name)
		case i > 0 && c.Name == frameworkComponent:
			return nil, fmt.Errorf("component %q: the name is the framework's own", c.Name)
		case seen[c.Name]:
			return nil, fmt.Errorf("component %q: two components of one name", c.Name)
		case c.FS == nil:
			return nil, fmt.Errorf("component %q: no FS", c.Name)
		}
		seen[c.Name] = true
		ms, err := loadMigrations(c, driver)
		if err != nil {
			return nil, err
		}
		plan = append(plan, componentMigrations{component: c.Name, ms: ms})
	}
	return plan, nil
}

func validComponentName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isDigit(c) && c != '_' && c != '-' && c != '.' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// loadMigrations reads the migrations of c for driver in version order.
func loadMigrations(c Component, driver string) ([]migration, error) {
	entries, err := fs.ReadDir(c.FS, driver)
	if err != nil {
		return nil, fmt.Errorf("component %s: read %s migrations: %w", c.Name, driver, err)
	}
	ms := make([]migration, 0, len(entries))
	for _, e := range entries { // ReadDir sorts by name, and names start with the zero-padded version
		file := path.Join(driver, e.Name())
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 || name == "" || !strings.HasSuffix(e.Name(), ".sql") || !e.Type().IsRegular() {
			return nil, fmt.Errorf("component %s: migration %s: a migration is a file named NNNN_name.sql", c.Name, file)
		}
		if len(ms) > 0 && ms[len(ms)-1].version >= v {
			return nil, fmt.Errorf("component %s: migration %s: version %d is not above %d (zero-pad the versions so that they sort)",
				c.Name, file, v, ms[len(ms)-1].version)
		}
		b, err := fs.ReadFile(c.FS, file)
		if err != nil {
			return nil, fmt.Errorf("component %s: read migration %s: %w", c.Name, file, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrationTx is what applying a migration needs of one driver's
// transaction. Statements use $N placeholders; scripts (the migration
// files) run as written, several statements at once, without parameters.
type migrationTx interface {
	exec(q string, args ...any) error
	script(q string) error
	query(q string, args []any, row func(scan func(dst ...any) error) error) error
}

// migrationRunner runs fn in one transaction that no other process is
// migrating at the same time.
type migrationRunner func(ctx context.Context, fn func(tx migrationTx) error) error

// migrations is the schema of the table that records what was applied,
// per driver.
var migrationsTable = map[string]string{
	"sqlite": `CREATE TABLE IF NOT EXISTS hotpath_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (component, version))`,
	"postgres": `CREATE TABLE IF NOT EXISTS hotpath_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version))`,
}

// legacyTableExists counts schema_migrations, the one-sequence record of
// databases made before components, per driver.
var legacyTableExists = map[string]string{
	"sqlite":   `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`,
	"postgres": `SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`,
}

// migrate applies the missing migrations of plan: first, in one
// transaction, it creates hotpath_migrations and adopts a legacy
// schema_migrations; then each missing migration in its own transaction.
func migrate(ctx context.Context, driver string, run migrationRunner, plan []componentMigrations, log *slog.Logger) error {
	err := run(ctx, func(tx migrationTx) error {
		if err := tx.exec(migrationsTable[driver]); err != nil {
			return fmt.Errorf("create hotpath_migrations: %w", err)
		}
		return adoptLegacy(tx, driver, plan, log)
	})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", driver, err)
	}
	for _, c := range plan {
		for _, m := range c.ms {
			applied := false
			err := run(ctx, func(tx migrationTx) error {
				done, err := count(tx, `SELECT count(*) FROM hotpath_migrations WHERE component = $1 AND version = $2`, c.component, m.version)
				if err != nil || done > 0 {
					return err
				}
				if err := tx.script(m.sql); err != nil {
					return err
				}
				if err := tx.exec(`INSERT INTO hotpath_migrations (component, version, name) VALUES ($1, $2, $3)`,
					c.component, m.version, m.name); err != nil {
					return err
				}
				applied = true
				return nil
			})
			if err != nil {
				return fmt.Errorf("migrate %s: component %s to version %d (%s): %w", driver, c.component, m.version, m.name, err)
			}
			if applied {
				log.Info("migration applied", "driver", driver, "component", c.component, "version", m.version, "name", m.name)
			}
		}
	}
	return nil
}

// ErrForeignDatabase reports a database whose legacy schema_migrations
// records a migration that none of the components declares: it was made
// by another service, and opening it would apply this one's migrations on
// top. Nothing is changed.
var ErrForeignDatabase = errors.New("store: the database holds migrations of another service")

// adoptLegacy gives each row of a legacy schema_migrations to the
// component that declares a migration of the same version and name,
// keeping applied_at, and drops the table. A row no component claims, or
// more than one does, stops it with nothing changed.
func adoptLegacy(tx migrationTx, driver string, plan []componentMigrations, log *slog.Logger) error {
	if n, err := count(tx, legacyTableExists[driver]); err != nil || n == 0 {
		return err
	}
	type legacyRow struct {
		version int
		name    string
	}
	var rows []legacyRow
	err := tx.query(`SELECT version, name FROM schema_migrations ORDER BY version`, nil, func(scan func(...any) error) error {
		var r legacyRow
		err := scan(&r.version, &r.name)
		rows = append(rows, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	owners := make([]string, len(rows))
	for i, r := range rows {
		var claims []string
		for _, c := range plan {
			for _, m := range c.ms {
				if m.version == r.version && m.name == r.name {
					claims = append(claims, c.component)
				}
			}
		}
		switch len(claims) {
		case 0:
			return fmt.Errorf("schema_migrations records version %d (%s), which no component declares: %w", r.version, r.name, ErrForeignDatabase)
		case 1:
			owners[i] = claims[0]
		default:
			return fmt.Errorf("schema_migrations records version %d (%s), which components %s all declare: give them distinct versions",
				r.version, r.name, strings.Join(claims, ", "))
		}
	}
	for i, r := range rows {
		// A row already recorded (the database went back to an older
		// binary, which made schema_migrations again) keeps its record.
		if err := tx.exec(`INSERT INTO hotpath_migrations (component, version, name, applied_at)
SELECT CAST($1 AS text), version, name, applied_at FROM schema_migrations WHERE version = $2
ON CONFLICT (component, version) DO NOTHING`, owners[i], r.version); err != nil {
			return fmt.Errorf("adopt schema_migrations version %d: %w", r.version, err)
		}
		log.Info("migration adopted", "driver", driver, "component", owners[i], "version", r.version, "name", r.name)
	}
	if err := tx.exec(`DROP TABLE schema_migrations`); err != nil {
		return fmt.Errorf("drop schema_migrations: %w", err)
	}
	return nil
}

// count runs a query whose one row is one integer.
func count(tx migrationTx, q string, args ...any) (int64, error) {
	var n int64
	err := tx.query(q, args, func(scan func(...any) error) error { return scan(&n) })
	return n, err
}

// sqliteMigrations runs each migration transaction on db, the writer: it
// begins transactions IMMEDIATE, so two processes opening one file take
// turns instead of both applying a migration.
func sqliteMigrations(db *sql.DB) migrationRunner {
	return func(ctx context.Context, fn func(migrationTx) error) (err error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		// After Commit this is a no-op returning ErrTxDone; before, it
		// releases the writer on every early return.
		defer func() { err = errors.Join(err, ignoreDone(tx.Rollback())) }()
		if err := fn(sqliteMigrationTx{ctx: ctx, tx: tx}); err != nil {
			return err
		}
		return tx.Commit()
	}
}

type sqliteMigrationTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t sqliteMigrationTx) exec(q string, args ...any) error {
	_, err := t.tx.ExecContext(t.ctx, sqliteParams(q), args...)
	return err
}

func (t sqliteMigrationTx) script(q string) error {
	_, err := t.tx.ExecContext(t.ctx, q)
	return err
}

func (t sqliteMigrationTx) query(q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.QueryContext(t.ctx, sqliteParams(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// postgresMigrations runs each migration transaction on pool holding the
// migration advisory lock, so replicas starting together apply each
// migration exactly once.
func postgresMigrations(pool *pgxpool.Pool) migrationRunner {
	return func(ctx context.Context, fn func(migrationTx) error) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
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
			return fn(postgresMigrationTx{ctx: ctx, tx: tx})
		})
	}
}

type postgresMigrationTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t postgresMigrationTx) exec(q string, args ...any) error {
	_, err := t.tx.Exec(t.ctx, q, args...)
	return err
}

// script runs a migration file. Without arguments pgx sends it over the
// simple protocol, which is what allows several statements in one Exec.
// The text is embedded at build time (or read from the service's own
// files); no input ever reaches it.
func (t postgresMigrationTx) script(q string) error {
	_, err := t.tx.Exec(t.ctx, q)
	return err
}

func (t postgresMigrationTx) query(q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ignoreDone drops the error Rollback returns after the transaction has
// already ended (for example when its context expired).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

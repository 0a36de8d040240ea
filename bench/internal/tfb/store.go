package tfb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DB reads and writes the World and Fortune tables on PostgreSQL (through a
// pgx pool) or on SQLite (through database/sql); exactly one of pg and lite is
// set. Identifiers are unquoted, so PostgreSQL folds them to world/fortune,
// the same tables hotpath creates.
type DB struct {
	pg   *pgxpool.Pool
	lite *sql.DB
}

// Open connects to driver "postgres" (dsn is a postgres:// URL) or "sqlite"
// (dsn is a file path) with at most maxConns connections; the pool opens them
// on demand, so an idle peer holds few.
func Open(ctx context.Context, driver, dsn string, maxConns int) (*DB, error) {
	switch driver {
	case "postgres":
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse postgres dsn: %w", err)
		}
		cfg.MaxConns = int32(maxConns)
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres pool: %w", err)
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("ping postgres %s@%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, err)
		}
		return &DB{pg: pool}, nil
	case "sqlite":
		// WAL lets readers run beside the single writer that /updates needs;
		// busy_timeout makes writers queue instead of failing with SQLITE_BUSY.
		lite, err := sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		lite.SetMaxOpenConns(maxConns)
		lite.SetMaxIdleConns(maxConns)
		if err := lite.PingContext(ctx); err != nil {
			lite.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		return &DB{lite: lite}, nil
	}
	return nil, fmt.Errorf("unknown driver %q: use postgres or sqlite", driver)
}

// Close releases every connection.
func (db *DB) Close() {
	if db.pg != nil {
		db.pg.Close()
		return
	}
	db.lite.Close() // nothing useful can be done with a close error at exit
}

// World reads the World row with the given id.
func (db *DB) World(ctx context.Context, id int32) (World, error) {
	w := World{ID: id}
	var err error
	if db.pg != nil {
		err = db.pg.QueryRow(ctx, "SELECT randomNumber FROM World WHERE id = $1", id).Scan(&w.RandomNumber)
	} else {
		err = db.lite.QueryRowContext(ctx, "SELECT randomNumber FROM World WHERE id = ?", id).Scan(&w.RandomNumber)
	}
	if err != nil {
		return w, fmt.Errorf("select world %d: %w", id, err)
	}
	return w, nil
}

// Worlds reads n random World rows, one query each, as the TechEmpower rules
// require (no IN list, no cache).
func (db *DB) Worlds(ctx context.Context, n int) ([]World, error) {
	worlds := make([]World, n)
	for i := range worlds {
		w, err := db.World(ctx, RandomID())
		if err != nil {
			return nil, err
		}
		worlds[i] = w
	}
	return worlds, nil
}

// Update reads n random World rows, gives each a new randomNumber and stores
// it before returning them. Rows are written in id order so that concurrent
// requests lock them in the same order and cannot deadlock.
func (db *DB) Update(ctx context.Context, n int) ([]World, error) {
	worlds, err := db.Worlds(ctx, n)
	if err != nil {
		return nil, err
	}
	for i := range worlds {
		worlds[i].RandomNumber = RandomID()
	}
	sorted := slices.Clone(worlds)
	slices.SortFunc(sorted, func(a, b World) int { return int(a.ID - b.ID) })
	if db.pg != nil {
		var batch pgx.Batch
		for _, w := range sorted {
			batch.Queue("UPDATE World SET randomNumber = $1 WHERE id = $2", w.RandomNumber, w.ID)
		}
		if err := db.pg.SendBatch(ctx, &batch).Close(); err != nil {
			return nil, fmt.Errorf("update %d worlds: %w", n, err)
		}
		return worlds, nil
	}
	if err := db.updateSQLite(ctx, sorted); err != nil {
		return nil, fmt.Errorf("update %d worlds: %w", n, err)
	}
	return worlds, nil
}

func (db *DB) updateSQLite(ctx context.Context, worlds []World) error {
	tx, err := db.lite.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	for _, w := range worlds {
		if _, err := tx.ExecContext(ctx, "UPDATE World SET randomNumber = ? WHERE id = ?", w.RandomNumber, w.ID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Fortunes reads every Fortune row, unsorted; see AddAndSort.
func (db *DB) Fortunes(ctx context.Context) ([]Fortune, error) {
	fortunes, err := db.fortunes(ctx, 16, "SELECT id, message FROM Fortune")
	if err != nil {
		return nil, fmt.Errorf("select fortunes: %w", err)
	}
	return fortunes, nil
}

// FortunesAfter reads up to limit fortunes with id > after, in id order:
// one page of GET /api/v1/fortunes.
func (db *DB) FortunesAfter(ctx context.Context, after int32, limit int) ([]Fortune, error) {
	query := "SELECT id, message FROM Fortune WHERE id > $1 ORDER BY id LIMIT $2"
	if db.lite != nil {
		query = "SELECT id, message FROM Fortune WHERE id > ? ORDER BY id LIMIT ?"
	}
	fortunes, err := db.fortunes(ctx, limit, query, after, limit)
	if err != nil {
		return nil, fmt.Errorf("select fortunes after %d: %w", after, err)
	}
	return fortunes, nil
}

// fortunes runs a query of (id, message) rows.
func (db *DB) fortunes(ctx context.Context, capacity int, query string, args ...any) ([]Fortune, error) {
	fortunes := make([]Fortune, 0, capacity)
	if db.pg != nil {
		rows, _ := db.pg.Query(ctx, query, args...) // the error comes back from rows.Err
		defer rows.Close()
		for rows.Next() {
			var f Fortune
			if err := rows.Scan(&f.ID, &f.Message); err != nil {
				return nil, err
			}
			fortunes = append(fortunes, f)
		}
		return fortunes, rows.Err()
	}
	rows, err := db.lite.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var f Fortune
		if err := rows.Scan(&f.ID, &f.Message); err != nil {
			return nil, err
		}
		fortunes = append(fortunes, f)
	}
	return fortunes, rows.Err()
}

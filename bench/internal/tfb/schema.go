package tfb

import (
	"context"
	"fmt"
)

// StandardFortunes are the twelve TechEmpower fortunes by id; the em dashes
// and the Japanese text are raw UTF-8 on purpose.
var StandardFortunes = []Fortune{
	{1, "fortune: No such file or directory"},
	{2, "A computer scientist is someone who fixes things that aren't broken."},
	{3, "After enough decimal places, nobody gives a damn."},
	{4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"},
	{5, "A computer program does what you tell it to do, not what you want it to do."},
	{6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"},
	{7, "Any program that runs right is obsolete."},
	{8, "A list is only as strong as its weakest link. — Donald Knuth"},
	{9, "Feature: A bug with seniority."},
	{10, "Computers make very fast, very accurate mistakes."},
	{11, `<script>alert("This should not be displayed in a browser alert box.");</script>`},
	{12, "フレームワークのベンチマーク"},
}

// Seed creates the World and Fortune tables when missing and fills them when
// empty, so it is safe to run before every start on a database hotpath may
// also have seeded.
func (db *DB) Seed(ctx context.Context) error {
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS World (id integer PRIMARY KEY, randomNumber integer NOT NULL)",
		"CREATE TABLE IF NOT EXISTS Fortune (id integer PRIMARY KEY, message text NOT NULL)",
	}
	fillWorld := "INSERT INTO World (id, randomNumber) SELECT g, floor(random() * 10000 + 1)::integer FROM generate_series(1, 10000) g ON CONFLICT (id) DO NOTHING"
	insertFortune := "INSERT INTO Fortune (id, message) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
	if db.lite != nil {
		// WHERE true resolves SQLite's parsing ambiguity between a SELECT's
		// join clause and the upsert's ON CONFLICT.
		fillWorld = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) " +
			"INSERT INTO World (id, randomNumber) SELECT i, abs(random()) % 10000 + 1 FROM n WHERE true ON CONFLICT (id) DO NOTHING"
		insertFortune = "INSERT INTO Fortune (id, message) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"
	}
	for _, s := range stmts {
		if err := db.exec(ctx, s); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if err := db.exec(ctx, fillWorld); err != nil {
		return fmt.Errorf("seed world: %w", err)
	}
	for _, f := range StandardFortunes {
		if err := db.exec(ctx, insertFortune, f.ID, f.Message); err != nil {
			return fmt.Errorf("seed fortune %d: %w", f.ID, err)
		}
	}
	return nil
}

func (db *DB) exec(ctx context.Context, query string, args ...any) error {
	if db.pg != nil {
		_, err := db.pg.Exec(ctx, query, args...)
		return err
	}
	_, err := db.lite.ExecContext(ctx, query, args...)
	return err
}

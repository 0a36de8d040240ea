package main

import (
	"context"
	"testing"

	"github.com/hotpath/hotpath"
)

// direct is a test's own handle on the database a server uses: the
// reference service's SQL over a hotpath.DB opened beside the server, to
// check what the server stored and to store what a test needs.
type direct struct {
	d data
}

// database is what the tests call the direct handle.
type database = *direct

// openDirect opens driver's database at dsn beside the server.
func openDirect(t testing.TB, driver, dsn string) database {
	t.Helper()
	db, err := hotpath.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatalf("open %s directly: %v", driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &direct{d: data{db: db}}
}

// World reads one World.
func (x *direct) World(ctx context.Context, id int32) (World, error) {
	var w World
	err := x.d.world(ctx, id, &w)
	return w, err
}

// AllWorlds reads every World, ordered by id.
func (x *direct) AllWorlds(ctx context.Context, dst []World) ([]World, error) {
	return x.d.allWorlds(ctx, dst)
}

// Fortunes reads every fortune.
func (x *direct) Fortunes(ctx context.Context, dst []Fortune) ([]Fortune, error) {
	return x.d.fortunes(ctx, dst)
}

// Fortune reads one fortune.
func (x *direct) Fortune(ctx context.Context, id int32) (Fortune, error) { return x.d.fortune(ctx, id) }

// AddFortune stores a fortune as the API would, with no cap.
func (x *direct) AddFortune(ctx context.Context, message string) (Fortune, error) {
	var f Fortune
	err := x.d.db.Write(ctx, func(tx *hotpath.Tx) error {
		var err error
		f, err = addFortune(tx, x.d.db.Driver(), message, 1<<31-1)
		return err
	})
	return f, err
}

// SetWorld stores a World's randomNumber, as the API would.
func (x *direct) SetWorld(ctx context.Context, id, number int32) (World, error) {
	var w World
	err := x.d.db.Write(ctx, func(tx *hotpath.Tx) error {
		return tx.QueryRow(sqlSetWorld, number, id).Scan(&w.ID, &w.RandomNumber)
	})
	return w, err
}

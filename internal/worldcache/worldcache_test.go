package worldcache

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/store"
)

// openStore opens a fresh, seeded SQLite store, closed at the test's end.
func openStore(tb testing.TB) *store.SQLite {
	tb.Helper()
	db, err := store.OpenSQLite(context.Background(), store.Options{DSN: filepath.Join(tb.TempDir(), "c.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func TestCacheLoadsFromTheStoreAndFollowsUpdates(t *testing.T) {
	db := openStore(t)
	c := New()
	if err := c.Ready(context.Background()); err == nil {
		t.Fatal("Ready before loading, want an error")
	}
	if _, ok := c.Get([]int32{1}, nil); ok {
		t.Fatal("Get before loading answered, want ok=false")
	}
	c.Start(db, time.Second, 10*time.Millisecond, 0, slog.New(slog.DiscardHandler))
	defer c.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("cache not loaded after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ids := []int32{1, 5000, 10000, 0, 10001}
	got, ok := c.Get(ids, nil)
	if !ok || len(got) != 3 {
		t.Fatalf("Get(%v) = %v, %v; want the 3 valid ids", ids, got, ok)
	}
	for _, w := range got {
		stored, err := db.World(context.Background(), w.ID)
		if err != nil || stored != w {
			t.Errorf("cached %v, stored %v (%v)", w, stored, err)
		}
	}
	c.Update([]store.World{{ID: 5000, RandomNumber: 1234}})
	if got, _ := c.Get([]int32{5000}, nil); got[0].RandomNumber != 1234 {
		t.Errorf("after Update: %v, want randomNumber 1234", got[0])
	}
}

// TestRefreshRepairsAStaleEntry: a write the cache did not see (another
// process's, or one whose update lost a race) shows after one refresh.
func TestRefreshRepairsAStaleEntry(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	c := New()
	c.Start(db, time.Second, 10*time.Millisecond, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	defer c.Stop()
	if !c.Loaded() {
		t.Fatal("not loaded after Start on a healthy database")
	}
	// Another writer changes World 42 behind the cache's back, and a raced
	// update leaves World 43 holding an older value than the table.
	if _, err := db.SetWorld(ctx, 42, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetWorld(ctx, 43, 4343); err != nil {
		t.Fatal(err)
	}
	c.Update([]store.World{{ID: 43, RandomNumber: 1}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := c.Get([]int32{42, 43}, nil)
		if got[0].RandomNumber == 4242 && got[1].RandomNumber == 4343 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache still %v 5s after the writes, want 4242 and 4343 within a 50ms refresh", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoRefreshKeepsOnlyOwnWrites: with refresh 0 the loader stops after
// the first load, and Stop returns.
func TestNoRefreshKeepsOnlyOwnWrites(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	c := New()
	c.Start(db, time.Second, 10*time.Millisecond, 0, slog.New(slog.DiscardHandler))
	before, _ := c.Get([]int32{42}, nil)
	if _, err := db.SetWorld(ctx, 42, before[0].RandomNumber%10000+1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, _ := c.Get([]int32{42}, nil); got[0] != before[0] {
		t.Errorf("refresh 0 reloaded: %v, want the loaded %v", got, before)
	}
	c.Stop()
}

// BenchmarkReload is what one refresh costs: every World read and stored.
func BenchmarkReload(b *testing.B) {
	db := openStore(b)
	c := New()
	log := slog.New(slog.DiscardHandler)
	for b.Loop() {
		if !c.load(db, time.Second, log) {
			b.Fatal("load failed")
		}
	}
}

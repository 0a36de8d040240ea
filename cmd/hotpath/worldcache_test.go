package main

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// seeded starts the service in this process, so its database is created
// and seeded, and opens that database beside it.
func seeded(tb testing.TB) data {
	tb.Helper()
	srv, _ := newMemServer(tb, 0)
	return srv.direct(tb).d
}

func TestCacheLoadsFromTheStoreAndFollowsUpdates(t *testing.T) {
	d := seeded(t)
	c := newWorldCache()
	if err := c.Ready(context.Background()); err == nil {
		t.Fatal("Ready before loading, want an error")
	}
	if _, ok := c.get([]int32{1}, nil); ok {
		t.Fatal("get before loading answered, want ok=false")
	}
	c.start(d, 10*time.Millisecond, 0, slog.New(slog.DiscardHandler))
	defer c.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("cache not loaded after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ids := []int32{1, 5000, 10000, 0, 10001}
	got, ok := c.get(ids, nil)
	if !ok || len(got) != 3 {
		t.Fatalf("get(%v) = %v, %v; want the 3 valid ids", ids, got, ok)
	}
	for _, w := range got {
		var stored World
		if err := d.world(context.Background(), w.ID, &stored); err != nil || stored != w {
			t.Errorf("cached %v, stored %v (%v)", w, stored, err)
		}
	}
	c.update([]World{{ID: 5000, RandomNumber: 1234}})
	if got, _ := c.get([]int32{5000}, nil); got[0].RandomNumber != 1234 {
		t.Errorf("after update: %v, want randomNumber 1234", got[0])
	}
}

// TestRefreshRepairsAStaleEntry: a write the cache did not see (another
// process's, or one whose update lost a race) shows after one refresh.
func TestRefreshRepairsAStaleEntry(t *testing.T) {
	ctx := context.Background()
	d := seeded(t)
	x := &direct{d: d}
	c := newWorldCache()
	c.start(d, 10*time.Millisecond, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	defer c.Stop()
	if !c.loaded.Load() {
		t.Fatal("not loaded after start on a healthy database")
	}
	// Another writer changes World 42 behind the cache's back, and a raced
	// update leaves World 43 holding an older value than the table.
	if _, err := x.SetWorld(ctx, 42, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := x.SetWorld(ctx, 43, 4343); err != nil {
		t.Fatal(err)
	}
	c.update([]World{{ID: 43, RandomNumber: 1}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := c.get([]int32{42, 43}, nil)
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
	d := seeded(t)
	c := newWorldCache()
	c.start(d, 10*time.Millisecond, 0, slog.New(slog.DiscardHandler))
	before, _ := c.get([]int32{42}, nil)
	if _, err := (&direct{d: d}).SetWorld(ctx, 42, before[0].RandomNumber%10000+1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, _ := c.get([]int32{42}, nil); got[0] != before[0] {
		t.Errorf("refresh 0 reloaded: %v, want the loaded %v", got, before)
	}
	c.Stop()
}

// BenchmarkReload is what one refresh costs: every World read and stored.
func BenchmarkReload(b *testing.B) {
	d := seeded(b)
	c := newWorldCache()
	log := slog.New(slog.DiscardHandler)
	for b.Loop() {
		if !c.load(d, log) {
			b.Fatal("load failed")
		}
	}
}

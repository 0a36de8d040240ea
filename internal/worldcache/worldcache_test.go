package worldcache

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/store"
)

func TestCacheLoadsFromTheStoreAndFollowsUpdates(t *testing.T) {
	db, err := store.OpenSQLite(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := New()
	if err := c.Ready(context.Background()); err == nil {
		t.Fatal("Ready before loading, want an error")
	}
	if _, ok := c.Get([]int32{1}, nil); ok {
		t.Fatal("Get before loading answered, want ok=false")
	}
	c.Start(db, time.Second, 10*time.Millisecond, slog.New(slog.DiscardHandler))
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

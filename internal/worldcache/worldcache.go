// Package worldcache keeps every World in memory for /cached-queries:
// loaded from the database at start (retrying while it is down) and kept
// current when this process changes a World.
package worldcache

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hotpath/hotpath/internal/store"
)

// Loader reads every World; the store provides it.
type Loader interface {
	AllWorlds(ctx context.Context, dst []store.World) ([]store.World, error)
}

// Cache maps World id to randomNumber. Each entry is an atomic, so readers
// never lock and a write is visible to the next read.
type Cache struct {
	numbers [10001]atomic.Int32 // index = id; 0 = not loaded
	loaded  atomic.Bool
	stop    chan struct{}
	done    chan struct{}
}

// New returns an empty cache; Start fills it.
func New() *Cache {
	return &Cache{stop: make(chan struct{}), done: make(chan struct{})}
}

// Start loads every World: once now, so a healthy start serves a full
// cache from the first request, then, if that failed, in the background,
// retrying every retry until it succeeds or Stop is called.
func (c *Cache) Start(l Loader, timeout, retry time.Duration, log *slog.Logger) {
	if c.load(l, timeout, log) {
		close(c.done)
		return
	}
	go func() {
		defer close(c.done)
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(retry):
			}
			if c.load(l, timeout, log) {
				return
			}
		}
	}()
}

// load reads every World into the cache and reports whether it succeeded.
func (c *Cache) load(l Loader, timeout time.Duration, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout*5)
	defer cancel()
	ws, err := l.AllWorlds(ctx, nil)
	if err != nil {
		log.Warn("world cache: database not ready, retrying", "err", err.Error())
		return false
	}
	c.Update(ws)
	c.loaded.Store(true)
	log.Info("world cache loaded", "worlds", len(ws))
	return true
}

// Stop ends a load still retrying.
func (c *Cache) Stop() {
	close(c.stop)
	<-c.done
}

// Loaded reports whether the cache has been filled.
func (c *Cache) Loaded() bool { return c.loaded.Load() }

// errLoading is the readiness answer until the first load succeeds.
var errLoading = errors.New("loading every World from the database")

// Ready is a readiness check: the process is not ready to serve
// /cached-queries until the cache is filled.
func (c *Cache) Ready(context.Context) error {
	if !c.loaded.Load() {
		return errLoading
	}
	return nil
}

// Update stores new values for the given Worlds.
func (c *Cache) Update(ws []store.World) {
	for _, w := range ws {
		if w.ID > 0 && int(w.ID) < len(c.numbers) {
			c.numbers[w.ID].Store(w.RandomNumber)
		}
	}
}

// Get appends the cached World of each id to dst; ok is false while the
// cache is not loaded.
func (c *Cache) Get(ids []int32, dst []store.World) (out []store.World, ok bool) {
	if !c.loaded.Load() {
		return dst, false
	}
	for _, id := range ids {
		if id <= 0 || int(id) >= len(c.numbers) {
			continue
		}
		dst = append(dst, store.World{ID: id, RandomNumber: c.numbers[id].Load()})
	}
	return dst, true
}

// Package worldcache keeps every World in memory for /cached-queries:
// loaded from the database at start (retrying while it is down), updated
// when this process changes a World, and reloaded every db.cache_refresh.
//
// /cached-queries answers 503 until the cache has been loaded. The cache
// takes this process's own writes at once and reloads every World every
// db.cache_refresh (5 s): writes made through other replicas or prefork
// children, and a write whose cache update lost a race with a concurrent
// write of the same World, show within that time. One reload costs about
// 7 ms of one core on SQLite (go test -run '^$' -bench Reload
// ./internal/worldcache), so about 0.14 % at the default.
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

	// Used by the loading goroutine only.
	buf     []store.World
	failing bool
}

// New returns an empty cache; Start fills it.
func New() *Cache {
	return &Cache{stop: make(chan struct{}), done: make(chan struct{})}
}

// Start loads every World: once now, so a healthy start serves a full
// cache from the first request, then, if that failed, in the background,
// retrying every retry until it succeeds or Stop is called. With refresh
// above zero it then reloads every World every refresh: a write made by
// another process (a replica, a prefork sibling), or one whose own update
// of the cache lost a race with a concurrent write of the same World,
// reaches the cache within one refresh.
func (c *Cache) Start(l Loader, timeout, retry, refresh time.Duration, log *slog.Logger) {
	loaded := c.load(l, timeout, log)
	if loaded && refresh <= 0 {
		close(c.done)
		return
	}
	go c.run(l, timeout, retry, refresh, loaded, log)
}

func (c *Cache) run(l Loader, timeout, retry, refresh time.Duration, loaded bool, log *slog.Logger) {
	defer close(c.done)
	for {
		wait := refresh
		if !loaded {
			wait = retry
		}
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
		ok := c.load(l, timeout, log)
		loaded = loaded || ok
		if loaded && refresh <= 0 {
			return
		}
	}
}

// load reads every World into the cache and reports whether it succeeded.
// It logs the first load, and a failure only when the previous try
// succeeded, so an outage is one line, not one a second.
func (c *Cache) load(l Loader, timeout time.Duration, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout*5)
	defer cancel()
	ws, err := l.AllWorlds(ctx, c.buf[:0])
	if err != nil {
		if !c.failing {
			log.Warn("world cache: cannot read the Worlds; retrying", "err", err.Error())
		}
		c.failing = true
		return false
	}
	c.buf = ws
	c.Update(ws)
	if c.failing || !c.loaded.Load() {
		log.Info("world cache loaded", "worlds", len(ws))
	}
	c.failing = false
	c.loaded.Store(true)
	return true
}

// Stop ends the background loading.
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

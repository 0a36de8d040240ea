package handler

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/worldcache"
)

// Store is what the database endpoints need from the data layer; both
// store.SQLite and store.Postgres provide it.
type Store interface {
	World(ctx context.Context, id int32) (store.World, error)
	Worlds(ctx context.Context, ids []int32, dst []store.World) ([]store.World, error)
	UpdateWorlds(ctx context.Context, ws []store.World) error
	Fortunes(ctx context.Context, dst []store.Fortune) ([]store.Fortune, error)
}

// MaxQueries is the most Worlds one request may ask for.
const MaxQueries = 500

// worldCount is the number of rows in World; ids and random numbers are 1..worldCount.
const worldCount = 10000

// DB serves the database endpoints: /db, /queries, /updates, /fortunes and
// /cached-queries.
type DB struct {
	store   Store
	cache   *worldcache.Cache
	timeout time.Duration
	log     *slog.Logger
}

// NewDB returns the database handlers; every store call is bounded by
// timeout (db.timeout). Unexpected store errors are logged to log.
func NewDB(s Store, cache *worldcache.Cache, timeout time.Duration, log *slog.Logger) *DB {
	return &DB{store: s, cache: cache, timeout: timeout, log: log}
}

// worlds is a pooled scratch set for one request: ids and Worlds, sized
// for MaxQueries so no request grows them.
type worlds struct {
	ids  []int32
	list []store.World
	one  store.World
	enc  *encoder
}

var worldsPool = sync.Pool{New: func() any {
	return &worlds{ids: make([]int32, 0, MaxQueries), list: make([]store.World, 0, MaxQueries)}
}}

func acquireWorlds() *worlds {
	w := worldsPool.Get().(*worlds)
	w.enc = acquireEncoder()
	return w
}

func releaseWorlds(w *worlds) {
	releaseEncoder(w.enc)
	w.enc = nil
	w.ids, w.list = w.ids[:0], w.list[:0]
	worldsPool.Put(w)
}

// randomID returns a World id in 1..10000.
func randomID() int32 { return int32(rand.IntN(worldCount)) + 1 }

// World answers GET /db: one random World.
func (h *DB) World(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(tracing.Context(ctx), h.timeout)
	defer cancel()
	w := acquireWorlds()
	defer releaseWorlds(w)
	var err error
	if w.one, err = h.store.World(c, randomID()); err != nil {
		h.fail(ctx, err)
		return
	}
	w.enc.write(ctx, fasthttp.StatusOK, &w.one)
}

// Queries answers GET /queries?queries=N: N random Worlds, each read with
// its own single-row query.
func (h *DB) Queries(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(tracing.Context(ctx), h.timeout)
	defer cancel()
	w := acquireWorlds()
	defer releaseWorlds(w)
	if !h.readRandom(ctx, c, w) {
		return
	}
	w.enc.write(ctx, fasthttp.StatusOK, &w.list)
}

// readRandom reads ?queries=N random Worlds into w.list, answering the
// error itself when it returns false.
func (h *DB) readRandom(ctx *fasthttp.RequestCtx, c context.Context, w *worlds) bool {
	w.randomIDs(QueryCount(ctx.QueryArgs().Peek("queries")))
	var err error
	if w.list, err = h.store.Worlds(c, w.ids, w.list); err != nil {
		h.fail(ctx, err)
		return false
	}
	return true
}

// Updates answers GET /updates?queries=N: N random Worlds, each given a new
// random number that is stored (in one statement or batch) before the
// answer shows it.
func (h *DB) Updates(ctx *fasthttp.RequestCtx) {
	c, cancel := context.WithTimeout(tracing.Context(ctx), h.timeout)
	defer cancel()
	w := acquireWorlds()
	defer releaseWorlds(w)
	if !h.readRandom(ctx, c, w) {
		return
	}
	for i := range w.list {
		// A new number that differs from the old one, so every row changes.
		old := w.list[i].RandomNumber
		n := int32(rand.IntN(worldCount-1)) + 1
		if n >= old {
			n++
		}
		w.list[i].RandomNumber = n
	}
	// UpdateWorlds rewrites repeated ids to the value it stored, so the
	// answer shows what the database holds.
	if err := h.store.UpdateWorlds(c, w.list); err != nil {
		h.fail(ctx, err)
		return
	}
	if h.cache != nil {
		h.cache.Update(w.list)
	}
	w.enc.write(ctx, fasthttp.StatusOK, &w.list)
}

// CachedQueries answers GET /cached-queries?count=N from the in-memory
// World cache.
func (h *DB) CachedQueries(ctx *fasthttp.RequestCtx) {
	w := acquireWorlds()
	defer releaseWorlds(w)
	w.randomIDs(QueryCount(ctx.QueryArgs().Peek("count")))
	var ok bool
	if w.list, ok = h.cache.Get(w.ids, w.list); !ok {
		problem.Write(ctx, problem.Unavailable("the World cache is still loading", nil))
		return
	}
	w.enc.write(ctx, fasthttp.StatusOK, &w.list)
}

func (w *worlds) randomIDs(n int) {
	for range n {
		w.ids = append(w.ids, randomID())
	}
}

// QueryCount parses a queries or count parameter: a decimal number clamped
// to 1..MaxQueries; missing, empty or anything but digits means 1.
func QueryCount(b []byte) int {
	if len(b) == 0 {
		return 1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 1
		}
		if n <= MaxQueries { // stop growing: anything above is clamped anyway
			n = n*10 + int(c-'0')
		}
	}
	return max(1, min(n, MaxQueries))
}

// fail answers a failed store call: 503 with Retry-After when the database
// is unreachable or slow, 404 for a missing row, else a logged 500.
func (h *DB) fail(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		problem.Write(ctx, problem.Unavailable("the database is unavailable or too slow (db.timeout); retry later", err))
	case errors.Is(err, store.ErrNotFound):
		problem.Write(ctx, problem.New(fasthttp.StatusNotFound, "no such row"))
	default:
		h.log.ErrorContext(ctx, "database call", "path", string(ctx.Path()), "err", err.Error())
		problem.Write(ctx, err)
	}
}

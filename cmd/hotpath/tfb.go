package main

import (
	"bytes"
	"cmp"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"

	"github.com/hotpath/hotpath"
)

// The endpoints of the TechEmpower Framework Benchmarks: their shape is
// the benchmark's (queries clamped rather than refused, HTML with one
// fortune added at request time), their answers pooled so that the hot
// ones allocate nothing.

const (
	contentTypeText = "text/plain"
	contentTypeHTML = "text/html; charset=utf-8"
	// maxQueries is the most Worlds one request may ask for.
	maxQueries = 500
	// extraFortune is added to every /fortunes answer at request time.
	extraFortune = "Additional fortune added at request time."
)

var helloBody = []byte("Hello, World!")

// plaintext answers GET /plaintext.
func plaintext(c *hotpath.Ctx) error {
	c.Text(http.StatusOK, contentTypeText, helloBody)
	return nil
}

// message is the /json answer.
type message struct {
	Message string `json:"message"`
}

// messages pool the /json answer: a local passed to JSON as an interface
// would escape and cost one allocation per request.
var messages = sync.Pool{New: func() any { return new(message) }}

// jsonHello answers GET /json: a message made for every request and
// encoded every time, as the benchmark's rules demand.
func jsonHello(c *hotpath.Ctx) error {
	m := messages.Get().(*message)
	m.Message = "Hello, World!"
	c.JSON(http.StatusOK, m)
	messages.Put(m)
	return nil
}

// worlds is a pooled scratch set for one request: ids and Worlds, sized
// for maxQueries so no request grows them.
type worlds struct {
	ids  []int32
	list []World
	one  World
}

var worldsPool = sync.Pool{New: func() any {
	return &worlds{ids: make([]int32, 0, maxQueries), list: make([]World, 0, maxQueries)}
}}

func acquireWorlds() *worlds { return worldsPool.Get().(*worlds) }

func releaseWorlds(w *worlds) {
	w.ids, w.list = w.ids[:0], w.list[:0]
	worldsPool.Put(w)
}

// randomID returns a World id in 1..10000.
func randomID() int32 { return int32(rand.IntN(worldCount)) + 1 }

func (w *worlds) randomIDs(n int) {
	for range n {
		w.ids = append(w.ids, randomID())
	}
}

// oneWorld answers GET /db: one random World.
func (s *service) oneWorld(c *hotpath.Ctx) error {
	w := acquireWorlds()
	defer releaseWorlds(w)
	if err := s.data.world(c.Context(), randomID(), &w.one); err != nil {
		return err
	}
	c.JSON(http.StatusOK, &w.one)
	return nil
}

// queries answers GET /queries?queries=N: N random Worlds, each read with
// its own single-row query.
func (s *service) queries(c *hotpath.Ctx) error {
	w := acquireWorlds()
	defer releaseWorlds(w)
	if err := s.readRandom(c, w); err != nil {
		return err
	}
	c.JSON(http.StatusOK, &w.list)
	return nil
}

// readRandom reads ?queries=N random Worlds into w.list.
func (s *service) readRandom(c *hotpath.Ctx, w *worlds) error {
	w.randomIDs(queryCount(c.Query("queries")))
	var err error
	w.list, err = s.data.worlds(c.Context(), w.ids, w.list)
	return err
}

// updates answers GET /updates?queries=N: N random Worlds, each given a
// new random number that is stored (in one statement or transaction)
// before the answer shows it.
func (s *service) updates(c *hotpath.Ctx) error {
	w := acquireWorlds()
	defer releaseWorlds(w)
	if err := s.readRandom(c, w); err != nil {
		return err
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
	// updateWorlds rewrites repeated ids to the value it stored, so the
	// answer shows what the database holds.
	if err := s.data.updateWorlds(c.Context(), w.list); err != nil {
		return err
	}
	s.cache.update(w.list)
	c.JSON(http.StatusOK, &w.list)
	return nil
}

// cachedQueries answers GET /cached-queries?count=N from the in-memory
// World cache.
func (s *service) cachedQueries(c *hotpath.Ctx) error {
	w := acquireWorlds()
	defer releaseWorlds(w)
	w.randomIDs(queryCount(c.Query("count")))
	var ok bool
	if w.list, ok = s.cache.get(w.ids, w.list); !ok {
		return errCacheLoading
	}
	c.JSON(http.StatusOK, &w.list)
	return nil
}

var errCacheLoading = &hotpath.Error{Status: http.StatusServiceUnavailable, RetryAfter: 1, Detail: "the World cache is still loading"}

// queryCount parses a queries or count parameter: a decimal number clamped
// to 1..maxQueries; missing, empty or anything but digits means 1.
func queryCount(b []byte) int {
	if len(b) == 0 {
		return 1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 1
		}
		if n <= maxQueries { // stop growing: anything above is clamped anyway
			n = n*10 + int(c-'0')
		}
	}
	return max(1, min(n, maxQueries))
}

// fortunes is a pooled scratch set for one /fortunes request.
type fortunes struct {
	list []Fortune
	page bytes.Buffer
}

var fortunesPool = sync.Pool{New: func() any {
	return &fortunes{list: make([]Fortune, 0, 32)}
}}

// fortunesPage answers GET /fortunes: every fortune plus one added now,
// sorted by message, as an HTML table.
func (s *service) fortunesPage(c *hotpath.Ctx) error {
	f := fortunesPool.Get().(*fortunes)
	defer func() {
		clear(f.list) // drop the message strings for the GC
		f.list = f.list[:0]
		f.page.Reset()
		fortunesPool.Put(f)
	}()
	var err error
	if f.list, err = s.data.fortunes(c.Context(), f.list); err != nil {
		return err
	}
	f.list = append(f.list, Fortune{ID: 0, Message: extraFortune})
	slices.SortFunc(f.list, func(a, b Fortune) int { return cmp.Compare(a.Message, b.Message) })
	// Rendered by fortunes.qtpl: the messages land only in element text,
	// where its escaping is complete, at a tenth of html/template's cost.
	WriteFortunesPage(&f.page, f.list)
	c.Text(http.StatusOK, contentTypeHTML, f.page.Bytes())
	return nil
}

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx": the checks read PostgreSQL with their own SQL
	_ "modernc.org/sqlite"             // database/sql driver "sqlite": the same for the SQLite file
)

// The crash test kills the server with SIGKILL while clients write, and
// after every restart reads the database with its own SQL: what was
// acknowledged is there, what is there was sent, and the idempotency
// records and outbox events agree with the rows they belong to. It knows
// nothing of the server's internals; only the tables and the HTTP API.

const (
	crashCycles     = 20
	crashWriters    = 4
	worldsPerWriter = 3
	// crashFirstWorld is the first World written; writer w owns the
	// worldsPerWriter Worlds from crashFirstWorld+w*worldsPerWriter, so
	// each World's PUTs are sent one after another and their order is known.
	crashFirstWorld = 1000
	// The kill comes at a random moment up to crashMaxKillDelay after the
	// writers start.
	crashMaxKillDelay = 500 * time.Millisecond
	// crashReplays is how many acknowledged keyed writes are retried after
	// each restart: the last ones answered before the kill, which a crash
	// is likeliest to lose, and crashReplays-crashReplaysLast others.
	crashReplays     = 8
	crashReplaysLast = 5
)

// TestCrashLosesNoAcknowledgedWrite kills the server crashCycles times
// while crashWriters clients create, update and delete, about half with an
// Idempotency-Key, then restarts it on the same database and checks the
// database after each restart.
func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	withToken(t)
	hooks := newHookReceiver(t) // it never listens: every event stays pending in the outbox
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			args := d.args(t)
			r := newCrashRun(t, d.name, strings.TrimPrefix(args[1], "--db.dsn="), hooks.url())
			r.run(append(args, "--webhooks.urls="+hooks.url(), "--webhooks.secret="+hookSecret,
				"--api.max_fortunes=1000000"))
		})
	}
}

// writeKind is the kind of a write the crash test sends.
type writeKind uint8

const (
	crashCreate writeKind = iota + 1 // POST /api/v1/fortunes
	crashPut                         // PUT /api/v1/worlds/{id}
	crashDelete                      // DELETE /api/v1/fortunes/{id}
)

// sentWrite is one write a client sent and what it was answered.
type sentWrite struct {
	kind    writeKind
	key     string // Idempotency-Key, "" without
	message string // crashCreate
	world   int32  // crashPut
	value   int32  // crashPut
	fortune int32  // crashDelete: the fortune deleted; crashCreate: the id answered
	index   int    // crashPut: its place among the PUTs sent to its World
	cycle   int

	answer
	// order numbers the answers across writers, in the order they came.
	order int64
}

// answer is an HTTP answer; status 0 means there was none.
type answer struct {
	status   int
	body     string
	location string
	replayed bool
}

func (s *sentWrite) acked() bool { return s.status >= 200 && s.status < 300 }

func (s *sentWrite) String() string {
	var what string
	switch s.kind {
	case crashCreate:
		what = fmt.Sprintf("POST %q", s.message)
	case crashPut:
		what = fmt.Sprintf("PUT World %d = %d", s.world, s.value)
	case crashDelete:
		what = fmt.Sprintf("DELETE fortune %d", s.fortune)
	}
	if s.key != "" {
		what += " (key " + s.key + ")"
	}
	if s.status == 0 {
		return what + ", unanswered"
	}
	return fmt.Sprintf("%s, answered %d %s", what, s.status, s.body)
}

// request is the method, path and body of the write.
func (s *sentWrite) request() (method, path, body string) {
	switch s.kind {
	case crashCreate:
		return "POST", "/api/v1/fortunes", `{"message":` + strconv.Quote(s.message) + `}`
	case crashPut:
		return "PUT", fmt.Sprintf("/api/v1/worlds/%d", s.world), fmt.Sprintf(`{"randomNumber":%d}`, s.value)
	}
	return "DELETE", fmt.Sprintf("/api/v1/fortunes/%d", s.fortune), ""
}

// fortuneState is what the test knows of a fortune it sent.
type fortuneState uint8

const (
	fortuneUnknown  fortuneState = iota // POST unanswered, not checked since
	fortuneLive                         // created (acknowledged or found): must be there
	fortuneNever                        // POST unanswered and not found: must never appear
	fortuneDeleting                     // DELETE unanswered, not checked since
	fortuneGone                         // deleted (acknowledged or found gone): must stay gone
)

// fortuneLog is a fortune the test sent, by its unique message.
type fortuneLog struct {
	message    string
	id         int32 // 0 until known
	state      fortuneState
	deleteSent bool
}

// worldLog is the PUTs sent to one World, in order.
type worldLog struct {
	id      int32
	initial int32 // before the test
	// stored is the value the World must hold unless one of since reached
	// the database: the last acknowledged PUT's, or what the last check
	// found there.
	stored int32
	since  []int32 // values of the PUTs sent after it without a 2xx
	sent   []int32 // every value PUT, in order
	acked  map[int32]bool
	used   map[int32]bool // every value sent or held, so a value names one PUT
}

// fresh picks a value no PUT to the World has sent.
func (w *worldLog) fresh(rng *rand.Rand) int32 {
	for {
		if v := int32(rng.IntN(10000) + 1); !w.used[v] {
			w.used[v] = true
			return v
		}
	}
}

// crashCounts are what the test reports.
type crashCounts struct {
	cycles           int
	acked            int // writes answered 2xx
	found            int // acknowledged writes found intact at the next check
	unanswered       int // writes without a 2xx (in flight at the kill)
	unansweredStored int // of those, how many had reached the database
	replayed         int // acknowledged keyed writes retried after a restart and replayed
	retried          int // unanswered keyed writes retried after a restart
	retriedReplayed  int // of those, how many were answered from the record
	events           int // outbox events checked at the last check
	answers          int // stored idempotency answers checked at the last check
}

// crashRun is one driver's crash test: the writes sent so far and what
// the database must therefore hold.
type crashRun struct {
	t           *testing.T
	driver, dsn string
	hookURL     string
	seed        uint64
	order       atomic.Int64

	worlds    map[int32]*worldLog
	fortunes  map[string]*fortuneLog // by message
	byID      map[int32]*fortuneLog
	keyed     map[string]*sentWrite
	before    map[int32]string // fortunes there before the test
	unchecked []*sentWrite     // acknowledged since the last check
	n         crashCounts
}

func newCrashRun(t *testing.T, driver, dsn, hookURL string) *crashRun {
	seed := uint64(time.Now().UnixNano())
	t.Logf("crash test seed %d", seed)
	return &crashRun{t: t, driver: driver, dsn: dsn, hookURL: hookURL, seed: seed,
		worlds: map[int32]*worldLog{}, fortunes: map[string]*fortuneLog{}, byID: map[int32]*fortuneLog{},
		keyed: map[string]*sentWrite{}}
}

// run starts the server with args, then kills and restarts it
// crashCycles times, checking the database after every restart.
func (r *crashRun) run(args []string) {
	t := r.t
	p := startProc(t, args...)
	waitReady(t, p)
	r.baseline(r.snapshot())
	rng := rand.New(rand.NewPCG(r.seed, 0))
	for cycle := 1; cycle <= crashCycles; cycle++ {
		r.writeAndKill(p, cycle, time.Duration(rng.Int64N(int64(crashMaxKillDelay))))
		p = startProc(t, args...)
		waitReady(t, p)
		snap := r.snapshot()
		r.check(cycle, snap)
		if t.Failed() {
			t.FailNow() // later cycles would only repeat the loss
		}
		r.retry(p, cycle, snap, rng)
		r.n.cycles++
	}
	r.check(crashCycles+1, r.snapshot()) // the retries of the last restart
	p.stop(t)
	n := r.n
	t.Logf("%s: %d cycles; %d writes acknowledged, %d found after the restart; %d unanswered, %d of them had reached the database; "+
		"%d acknowledged keyed writes retried and replayed; %d unanswered keyed writes retried, %d answered from the record; "+
		"%d outbox events and %d stored answers checked at the end",
		r.driver, n.cycles, n.acked, n.found, n.unanswered, n.unansweredStored, n.replayed, n.retried, n.retriedReplayed, n.events, n.answers)
	if n.found != n.acked {
		t.Errorf("%d of %d acknowledged writes were not found intact", n.acked-n.found, n.acked)
	}
}

// baseline records the Worlds the writers will change and the fortunes
// that were there before them.
func (r *crashRun) baseline(snap crashSnapshot) {
	r.before = snap.fortunes
	for i := range crashWriters * worldsPerWriter {
		id := int32(crashFirstWorld + i)
		v := snap.worlds[id]
		r.worlds[id] = &worldLog{id: id, initial: v, stored: v, acked: map[int32]bool{}, used: map[int32]bool{v: true}}
	}
}

// writeAndKill runs the writers against p and kills it with SIGKILL after
// delay, then takes in what they sent.
func (r *crashRun) writeAndKill(p *proc, cycle int, delay time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: crashWriters, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	stop := make(chan struct{})
	sent := make([][]*sentWrite, crashWriters)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[w] = r.writer(c, p.app, cycle, w, stop)
		}()
	}
	time.Sleep(delay)
	p.signal(r.t, syscall.SIGKILL)
	p.wait(r.t, 10*time.Second)
	close(stop)
	wg.Wait()
	for _, ws := range sent { // each writer's in the order it sent them
		for _, s := range ws {
			r.absorb(s)
		}
	}
}

// writer sends writes one after another until stop is closed or the
// server stops answering, and returns them with their answers.
func (r *crashRun) writer(c *http.Client, app string, cycle, w int, stop <-chan struct{}) []*sentWrite {
	rng := rand.New(rand.NewPCG(r.seed, uint64(cycle*crashWriters+w+1)))
	var (
		sent []*sentWrite
		mine []int32 // fortunes this writer created this cycle and has not deleted
	)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return sent
		default:
		}
		s := &sentWrite{cycle: cycle}
		if rng.IntN(2) == 0 {
			s.key = fmt.Sprintf("crash-%d-%d-%d", cycle, w, n)
		}
		switch x := rng.IntN(100); {
		case x < 25 && len(mine) > 0:
			i := rng.IntN(len(mine))
			s.kind, s.fortune = crashDelete, mine[i]
			mine = slices.Delete(mine, i, i+1)
		case x < 60:
			wl := r.worlds[int32(crashFirstWorld+w*worldsPerWriter+rng.IntN(worldsPerWriter))]
			s.kind, s.world, s.value = crashPut, wl.id, wl.fresh(rng)
		default:
			s.kind, s.message = crashCreate, fmt.Sprintf("crash %d.%d.%d", cycle, w, n)
		}
		a, err := crashSend(c, app, s)
		sent = append(sent, s)
		if err != nil {
			return sent // the server is gone: this write stays unanswered
		}
		s.answer, s.order = a, r.order.Add(1)
		if s.kind == crashCreate && s.acked() {
			f, err := decodeFortune(a.body)
			if err != nil || f.Message != s.message || a.location != fmt.Sprintf("/api/v1/fortunes/%d", f.ID) {
				r.t.Errorf("%s: the answer is not the fortune at its Location %q (%v)", s, a.location, err)
			}
			s.fortune = f.ID
			mine = append(mine, f.ID)
		}
	}
}

// crashSend sends s once with the test token.
func crashSend(c *http.Client, app string, s *sentWrite) (answer, error) {
	method, path, body := s.request()
	req, err := http.NewRequest(method, app+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(authHeader[0], authHeader[1])
	if s.key != "" {
		req.Header.Set("Idempotency-Key", s.key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location"),
		replayed: resp.Header.Get("Idempotency-Replayed") == "true"}, nil
}

// absorb takes a write of the last cycle into what the database must hold.
func (r *crashRun) absorb(s *sentWrite) {
	if s.key != "" {
		r.keyed[s.key] = s
	}
	if s.kind == crashPut {
		wl := r.worlds[s.world]
		s.index = len(wl.sent)
		wl.sent = append(wl.sent, s.value)
	}
	if s.acked() {
		r.n.acked++
		r.settle(s)
		return
	}
	r.n.unanswered++
	switch s.kind {
	case crashCreate:
		r.fortunes[s.message] = &fortuneLog{message: s.message, state: fortuneUnknown}
	case crashPut:
		wl := r.worlds[s.world]
		wl.since = append(wl.since, s.value)
	case crashDelete:
		f := r.byID[s.fortune]
		f.deleteSent, f.state = true, fortuneDeleting
	}
}

// settle records an acknowledged write: its change must be there.
func (r *crashRun) settle(s *sentWrite) {
	r.unchecked = append(r.unchecked, s)
	switch s.kind {
	case crashCreate:
		f := r.fortunes[s.message]
		if f == nil {
			f = &fortuneLog{message: s.message}
			r.fortunes[s.message] = f
		}
		f.id, f.state = s.fortune, fortuneLive
		r.byID[f.id] = f
	case crashPut:
		wl := r.worlds[s.world]
		wl.stored, wl.since = s.value, nil
		wl.acked[s.value] = true
	case crashDelete:
		f := r.byID[s.fortune]
		f.deleteSent, f.state = true, fortuneGone
	}
}

// crashSnapshot is the database as one read transaction saw it.
type crashSnapshot struct {
	worlds   map[int32]int32
	fortunes map[int32]string
	answers  map[string]storedAnswer // by idem_key: every key has the one token's scope
	events   []outboxRow
}

// storedAnswer is a row of idempotency_keys.
type storedAnswer struct {
	status   int
	location string
	body     []byte
}

// outboxRow is a row of webhook_outbox.
type outboxRow struct {
	seq                 int64
	eventID, url, typ   string
	data                string
	fortune             crashFortune // fortune.created and fortune.deleted
	world, randomNumber int32        // world.updated
}

// crashFortune is a fortune as the API and the events carry it.
type crashFortune struct {
	ID      int32  `json:"id"`
	Message string `json:"message"`
}

func decodeFortune(s string) (crashFortune, error) {
	var f crashFortune
	err := json.Unmarshal([]byte(s), &f)
	return f, err
}

// openCrashDB opens the database with plain database/sql.
func (r *crashRun) openCrashDB() *sql.DB {
	name, dsn := "pgx", r.dsn
	if r.driver == "sqlite" {
		name, dsn = "sqlite", r.dsn+"?_pragma=busy_timeout(5000)"
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		r.t.Fatalf("open %s: %v", r.driver, err)
	}
	return db
}

// snapshot reads every table the checks need in one read transaction,
// and on SQLite checks the file's integrity first.
func (r *crashRun) snapshot() crashSnapshot {
	t := r.t
	t.Helper()
	db := r.openCrashDB()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := &sql.TxOptions{ReadOnly: true}
	if r.driver == "sqlite" {
		var check string
		if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check after SIGKILL: %q, %v", check, err)
		}
	} else {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		t.Fatalf("begin the read: %v", err)
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to keep
	snap := crashSnapshot{worlds: map[int32]int32{}, fortunes: map[int32]string{}, answers: map[string]storedAnswer{}}
	query := func(q string, scan func(*sql.Rows) error) {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	query("SELECT id, randomNumber FROM World", func(rows *sql.Rows) error {
		var id, v int32
		err := rows.Scan(&id, &v)
		snap.worlds[id] = v
		return err
	})
	query("SELECT id, message FROM Fortune", func(rows *sql.Rows) error {
		var id int32
		var m string
		err := rows.Scan(&id, &m)
		snap.fortunes[id] = m
		return err
	})
	query("SELECT idem_key, status, location, body FROM idempotency_keys", func(rows *sql.Rows) error {
		var k string
		var a storedAnswer
		err := rows.Scan(&k, &a.status, &a.location, &a.body)
		snap.answers[k] = a
		return err
	})
	query("SELECT seq, event_id, url, type, data FROM webhook_outbox ORDER BY seq", func(rows *sql.Rows) error {
		var e outboxRow
		if err := rows.Scan(&e.seq, &e.eventID, &e.url, &e.typ, &e.data); err != nil {
			return err
		}
		snap.events = append(snap.events, e)
		return nil
	})
	return snap
}

// eventIndex is the outbox by what each event is about.
type eventIndex struct {
	created map[int32]outboxRow   // fortune.created by fortune id
	deleted map[int32]outboxRow   // fortune.deleted by fortune id
	worlds  map[int32][]outboxRow // world.updated by World, in seq order
	updated map[[2]int32]bool     // world.updated (id, randomNumber)
}

// indexEvents decodes every outbox row, failing on malformed or repeated
// events.
func (r *crashRun) indexEvents(cycle int, snap crashSnapshot) eventIndex {
	t := r.t
	ix := eventIndex{created: map[int32]outboxRow{}, deleted: map[int32]outboxRow{}, worlds: map[int32][]outboxRow{}, updated: map[[2]int32]bool{}}
	ids := map[string]bool{}
	messages := map[string]bool{}
	for _, e := range snap.events {
		if e.url != r.hookURL || e.eventID == "" || ids[e.eventID] {
			t.Errorf("cycle %d: outbox row %d has URL %q and id %q; want %q and an id of its own", cycle, e.seq, e.url, e.eventID, r.hookURL)
		}
		ids[e.eventID] = true
		switch e.typ {
		case "fortune.created", "fortune.deleted":
			f, err := decodeFortune(e.data)
			if err != nil || f.ID == 0 {
				t.Errorf("cycle %d: outbox row %d %s: data %q is not a fortune (%v)", cycle, e.seq, e.typ, e.data, err)
				continue
			}
			e.fortune = f
			byID := ix.created
			if e.typ == "fortune.deleted" {
				byID = ix.deleted
			} else if messages[f.Message] {
				t.Errorf("cycle %d: a second fortune.created event for %q: %s", cycle, f.Message, e.data)
			}
			messages[f.Message] = true
			if _, dup := byID[f.ID]; dup {
				t.Errorf("cycle %d: a second %s event for fortune %d: %s", cycle, e.typ, f.ID, e.data)
			}
			byID[f.ID] = e
		case "world.updated":
			var w struct {
				ID           int32 `json:"id"`
				RandomNumber int32 `json:"randomNumber"`
			}
			if err := json.Unmarshal([]byte(e.data), &w); err != nil || w.ID == 0 {
				t.Errorf("cycle %d: outbox row %d world.updated: data %q is not a World (%v)", cycle, e.seq, e.data, err)
				continue
			}
			e.world, e.randomNumber = w.ID, w.RandomNumber
			if ix.updated[[2]int32{w.ID, w.RandomNumber}] {
				t.Errorf("cycle %d: a second world.updated event for World %d = %d: a PUT written twice", cycle, w.ID, w.RandomNumber)
			}
			ix.updated[[2]int32{w.ID, w.RandomNumber}] = true
			ix.worlds[w.ID] = append(ix.worlds[w.ID], e)
		default:
			t.Errorf("cycle %d: outbox row %d has type %q", cycle, e.seq, e.typ)
		}
	}
	return ix
}

// check compares the database after a restart with the writes sent: the
// acknowledged ones first, then every row, answer and event. What an
// unanswered write left is then known, and becomes what later checks
// expect.
func (r *crashRun) check(cycle int, snap crashSnapshot) {
	ix := r.indexEvents(cycle, snap)
	for _, s := range r.unchecked {
		if r.found(cycle, snap, ix, s) {
			r.n.found++
		}
	}
	r.unchecked = nil
	r.checkFortunes(cycle, snap, ix)
	r.checkWorlds(cycle, snap, ix)
	r.checkAnswers(cycle, snap, ix)
	r.n.events, r.n.answers = len(snap.events), len(snap.answers)
}

// found reports whether an acknowledged write is in the database with
// its event and, when keyed, its stored answer; it names what is missing.
func (r *crashRun) found(cycle int, snap crashSnapshot, ix eventIndex, s *sentWrite) bool {
	t := r.t
	ok := true
	lost := func(format string, args ...any) {
		t.Errorf("cycle %d: acknowledged %s: %s", cycle, s, fmt.Sprintf(format, args...))
		ok = false
	}
	switch s.kind {
	case crashCreate:
		_, deleted := ix.deleted[s.fortune]
		deleted = deleted && r.byID[s.fortune] != nil && r.byID[s.fortune].deleteSent
		if m, there := snap.fortunes[s.fortune]; (!there || m != s.message) && !deleted {
			lost("fortune %d holds %q (there: %v), and no DELETE sent for it committed", s.fortune, m, there)
		}
		if e, there := ix.created[s.fortune]; !there || e.fortune.Message != s.message {
			lost("no fortune.created event for it (found %q)", e.data)
		}
	case crashPut:
		wl := r.worlds[s.world]
		if v := snap.worlds[s.world]; !slices.Contains(wl.sent[s.index:], v) {
			lost("World %d holds %d, neither this value nor one of the later PUTs %v", s.world, v, wl.sent[s.index+1:])
		}
		if !ix.updated[[2]int32{s.world, s.value}] {
			lost("no world.updated event for it")
		}
	case crashDelete:
		if m, there := snap.fortunes[s.fortune]; there {
			lost("fortune %d is still there with %q", s.fortune, m)
		}
		if _, there := ix.deleted[s.fortune]; !there {
			lost("no fortune.deleted event for it")
		}
	}
	if s.key != "" {
		a, there := snap.answers[s.key]
		if !there || a.status != s.status || string(a.body) != s.body || a.location != s.location {
			lost("its stored answer is %d %q at %q (there: %v)", a.status, a.body, a.location, there)
		}
	}
	return ok
}

// checkFortunes checks every Fortune row and every fortune sent, and
// settles what the unanswered POSTs and DELETEs left.
func (r *crashRun) checkFortunes(cycle int, snap crashSnapshot, ix eventIndex) {
	t := r.t
	byMessage := map[string]int32{}
	for id, m := range snap.fortunes {
		if before, ok := r.before[id]; ok {
			if m != before {
				t.Errorf("cycle %d: fortune %d, there before the test, holds %q, was %q", cycle, id, m, before)
			}
			continue
		}
		f := r.fortunes[m]
		if f == nil {
			t.Errorf("cycle %d: fortune %d %q was never sent", cycle, id, m)
			continue
		}
		if other, dup := byMessage[m]; dup {
			t.Errorf("cycle %d: fortunes %d and %d both hold %q, sent once", cycle, other, id, m)
		}
		byMessage[m] = id
		if e, ok := ix.created[id]; !ok || e.fortune.Message != m {
			t.Errorf("cycle %d: fortune %d %q has no fortune.created event (found %q)", cycle, id, m, e.data)
		}
		if e, ok := ix.deleted[id]; ok {
			t.Errorf("cycle %d: fortune %d %q is there, yet the outbox holds its fortune.deleted event %s", cycle, id, m, e.data)
		}
	}
	for id, m := range r.before {
		if _, ok := snap.fortunes[id]; !ok {
			t.Errorf("cycle %d: fortune %d %q, there before the test, is gone", cycle, id, m)
		}
	}
	for _, f := range r.fortunes {
		id, there := byMessage[f.message]
		switch f.state {
		case fortuneUnknown:
			f.state = fortuneNever
			if there {
				f.id, f.state = id, fortuneLive
				r.byID[id] = f
				r.n.unansweredStored++
			}
		case fortuneDeleting:
			f.state = fortuneLive
			if !there {
				f.state = fortuneGone
				r.n.unansweredStored++
			}
		case fortuneLive:
			if !there || id != f.id {
				t.Errorf("cycle %d: fortune %d %q is missing (found as %d: %v)", cycle, f.id, f.message, id, there)
			}
		case fortuneNever, fortuneGone:
			if there {
				t.Errorf("cycle %d: fortune %q is there as %d after it was found gone or never made", cycle, f.message, id)
			}
		}
	}
	for id, e := range ix.created {
		f := r.fortunes[e.fortune.Message]
		if _, deleted := ix.deleted[id]; f == nil || (snap.fortunes[id] != e.fortune.Message && !deleted) {
			t.Errorf("cycle %d: fortune.created event %s belongs to no committed change", cycle, e.data)
		}
	}
	for id, e := range ix.deleted {
		f := r.byID[id]
		c, created := ix.created[id]
		_, there := snap.fortunes[id]
		if f == nil || !f.deleteSent || there || !created || c.fortune != e.fortune || c.seq > e.seq {
			t.Errorf("cycle %d: fortune.deleted event %s belongs to no committed DELETE (sent: %v, still there: %v, created event %s)",
				cycle, e.data, f != nil && f.deleteSent, there, c.data)
		}
	}
}

// checkWorlds checks each written World holds its last acknowledged
// value or one sent after it, and that its events tell its history.
func (r *crashRun) checkWorlds(cycle int, snap crashSnapshot, ix eventIndex) {
	t := r.t
	for id, evs := range ix.worlds {
		wl := r.worlds[id]
		for _, e := range evs {
			if wl == nil || !slices.Contains(wl.sent, e.randomNumber) {
				t.Errorf("cycle %d: world.updated event %s belongs to no PUT sent", cycle, e.data)
			}
		}
	}
	for id, wl := range r.worlds {
		v := snap.worlds[id]
		if v != wl.stored && !slices.Contains(wl.since, v) {
			t.Errorf("cycle %d: World %d holds %d; the last acknowledged PUT (or the last check) left %d, and only %v were sent after it",
				cycle, id, v, wl.stored, wl.since)
		}
		if v != wl.stored {
			r.n.unansweredStored++
		}
		wl.stored, wl.since = v, nil
		evs := ix.worlds[id]
		switch {
		case len(evs) == 0 && v != wl.initial:
			t.Errorf("cycle %d: World %d holds %d, not its first %d, without a world.updated event", cycle, id, v, wl.initial)
		case len(evs) > 0 && evs[len(evs)-1].randomNumber != v:
			t.Errorf("cycle %d: World %d holds %d, but its last world.updated event says %s", cycle, id, v, evs[len(evs)-1].data)
		}
		for a := range wl.acked {
			if !ix.updated[[2]int32{id, a}] {
				t.Errorf("cycle %d: acknowledged PUT World %d = %d has no world.updated event", cycle, id, a)
			}
		}
	}
}

// checkAnswers checks every stored idempotency answer belongs to a
// change that is there, and every keyed write has a stored answer exactly
// when its change was made.
func (r *crashRun) checkAnswers(cycle int, snap crashSnapshot, ix eventIndex) {
	t := r.t
	for k, a := range snap.answers {
		s := r.keyed[k]
		if s == nil {
			t.Errorf("cycle %d: stored answer for key %q, never sent: %d %q", cycle, k, a.status, a.body)
			continue
		}
		bad := func(why string) {
			t.Errorf("cycle %d: stored answer %d %q at %q of %s: %s", cycle, a.status, a.body, a.location, s, why)
		}
		switch s.kind {
		case crashCreate:
			f, err := decodeFortune(string(a.body))
			_, deleted := ix.deleted[f.ID]
			switch {
			case a.status != 201 || err != nil || f.Message != s.message || a.location != fmt.Sprintf("/api/v1/fortunes/%d", f.ID):
				bad("not the 201 of this fortune")
			case snap.fortunes[f.ID] != s.message && !deleted:
				bad("the fortune is not there, and no DELETE of it committed")
			case ix.created[f.ID].fortune != f:
				bad("no fortune.created event for it")
			case r.fortunes[s.message].id != f.ID:
				bad(fmt.Sprintf("the fortune the test knows is %d", r.fortunes[s.message].id))
			}
		case crashPut:
			switch {
			case a.status != 200 || string(a.body) != fmt.Sprintf(`{"id":%d,"randomNumber":%d}`, s.world, s.value):
				bad("not the 200 of this World")
			case !ix.updated[[2]int32{s.world, s.value}]:
				bad("this value was never written: no world.updated event")
			}
		case crashDelete:
			_, there := snap.fortunes[s.fortune]
			_, deleted := ix.deleted[s.fortune]
			switch {
			case a.status != 204 || len(a.body) != 0:
				bad("not a 204")
			case there || !deleted:
				bad(fmt.Sprintf("the delete was not made (fortune there: %v, fortune.deleted event: %v)", there, deleted))
			}
		}
	}
	// A keyed write without an answer left a stored answer exactly when
	// its change committed.
	for k, s := range r.keyed {
		if s.acked() {
			continue
		}
		_, stored := snap.answers[k]
		var made bool
		switch s.kind {
		case crashCreate:
			made = r.fortunes[s.message].state == fortuneLive
		case crashPut:
			made = ix.updated[[2]int32{s.world, s.value}]
		case crashDelete:
			_, made = ix.deleted[s.fortune]
		}
		if stored != made {
			t.Errorf("cycle %d: unanswered %s: stored answer %v, change made %v; they commit together", cycle, s, stored, made)
		}
	}
}

// retry sends again, to the restarted server, some keyed writes
// acknowledged before the kill, which must be replayed and change nothing,
// then every keyed write left unanswered, which must be replayed when its
// answer was stored and made now when it was not.
func (r *crashRun) retry(p *proc, cycle int, snap crashSnapshot, rng *rand.Rand) {
	t := r.t
	var acked, unanswered []*sentWrite
	for _, s := range r.keyed {
		switch {
		case s.acked() && s.cycle == cycle:
			acked = append(acked, s)
		case !s.acked():
			unanswered = append(unanswered, s)
		}
	}
	slices.SortFunc(acked, func(a, b *sentWrite) int { return int(b.order - a.order) })
	replays := acked[:min(len(acked), crashReplaysLast)]
	for _, i := range rng.Perm(len(acked))[:min(len(acked), crashReplays)] {
		if len(replays) < crashReplays && !slices.Contains(replays, acked[i]) {
			replays = append(replays, acked[i])
		}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	before := r.counts()
	for _, s := range replays {
		a := r.sendUntilAnswered(c, p, s)
		if !a.replayed || a.status != s.status || a.body != s.body || a.location != s.location {
			t.Errorf("cycle %d: %s retried after the restart: %d %q at %q (replayed %v), want the stored answer replayed",
				cycle, s, a.status, a.body, a.location, a.replayed)
			continue
		}
		r.n.replayed++
	}
	if after := r.counts(); after != before {
		t.Errorf("cycle %d: %d replayed keyed writes changed the database: fortunes, events, stored answers %v before, %v after",
			cycle, len(replays), before, after)
	}
	for _, s := range unanswered {
		_, stored := snap.answers[s.key]
		a := r.sendUntilAnswered(c, p, s)
		if a.status < 200 || a.status > 299 || a.replayed != stored {
			t.Errorf("cycle %d: unanswered %s retried after the restart: %d %q (replayed %v), want a 2xx, replayed exactly when its answer was stored (%v)",
				cycle, s, a.status, a.body, a.replayed, stored)
			continue
		}
		r.n.retried++
		if a.replayed {
			r.n.retriedReplayed++
		}
		s.answer, s.order = a, r.order.Add(1)
		if s.kind == crashCreate {
			f, err := decodeFortune(a.body)
			if err != nil || f.Message != s.message {
				t.Errorf("cycle %d: %s: the answer is not the fortune (%v)", cycle, s, err)
			}
			if known := r.fortunes[s.message]; a.replayed && known.id != f.ID {
				t.Errorf("cycle %d: %s: replayed fortune %d, but the database holds it as %d", cycle, s, f.ID, known.id)
			}
			s.fortune = f.ID
		}
		r.n.acked++
		r.settle(s)
	}
}

// sendUntilAnswered sends s until the answer is neither 409 (the key is
// still locked by a transaction of the killed process) nor 503.
func (r *crashRun) sendUntilAnswered(c *http.Client, p *proc, s *sentWrite) answer {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a, err := crashSend(c, p.app, s)
		if err != nil {
			r.t.Fatalf("%s retried after the restart: %v", s, err)
		}
		if (a.status != 409 && a.status != 503) || time.Now().After(deadline) {
			return a
		}
	}
}

// counts are the rows of Fortune, webhook_outbox and idempotency_keys.
func (r *crashRun) counts() [3]int {
	db := r.openCrashDB()
	defer db.Close()
	var n [3]int
	for i, table := range []string{"Fortune", "webhook_outbox", "idempotency_keys"} {
		if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n[i]); err != nil {
			r.t.Fatalf("count %s: %v", table, err)
		}
	}
	return n
}

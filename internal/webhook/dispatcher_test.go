package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/store"
)

const secret = "0123456789abcdef0123456789abcdef"

// delivery is one request a receiver got.
type delivery struct {
	body    []byte
	header  http.Header
	status  int
	payload struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Time string          `json:"time"`
		Data json.RawMessage `json:"data"`
	}
}

// receiver is a real webhook receiver on loopback. answer decides the
// status of the n-th request (0-based); nil answers 204.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int) int
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got)
		code := http.StatusNoContent
		if r.answer != nil {
			code = r.answer(n)
		}
		d := delivery{body: body, header: req.Header.Clone(), status: code}
		if err := json.Unmarshal(body, &d.payload); err != nil {
			t.Errorf("delivery %d body %q is not JSON: %v", n, body, err)
		}
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

// accepted returns the deliveries answered 2xx, in arrival order.
func (r *receiver) accepted() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.got {
		if d.status >= 200 && d.status < 300 {
			out = append(out, d)
		}
	}
	return out
}

func (r *receiver) waitAccepted(t *testing.T, n int, within time.Duration) []delivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if got := r.accepted(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := r.accepted()
	t.Fatalf("receiver accepted %d events in %s, want %d", len(got), within, n)
	return nil
}

type fixture struct {
	store *store.DB
	d     *Dispatcher
	set   *vm.Set
}

// itemsComponent is the table the tests' changes write, as a service's
// own component would bring it.
func itemsComponent() store.Component {
	return store.Component{Name: "items", FS: fstest.MapFS{
		"sqlite/0001_items.sql":   {Data: []byte(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`)},
		"postgres/0001_items.sql": {Data: []byte(`CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL);`)},
	}}
}

// start opens a real SQLite store with the outbox on for urls and starts a
// dispatcher on it with short timings.
func start(t *testing.T, cfg config.Webhooks) fixture {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{
		Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "hotpath.db"), Timeout: 2 * time.Second, OutboxURLs: cfg.URLs,
		Components: []store.Component{itemsComponent()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	set := vm.NewSet()
	d, err := New(cfg, s, nil, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	d.timing = timing{poll: 20 * time.Millisecond, retryBase: 20 * time.Millisecond, retryMax: 100 * time.Millisecond, backlog: 20 * time.Millisecond, prune: time.Hour}
	d.Start()
	t.Cleanup(d.Stop)
	return fixture{store: s, d: d, set: set}
}

func webhooks(urls ...string) config.Webhooks {
	cfg := config.Default().Webhooks
	cfg.URLs, cfg.Secret, cfg.Timeout = urls, secret, time.Second
	return cfg
}

// item is a row of items, and the data of its events.
type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// The changes the tests make, each returning the row it wrote.
const (
	sqlCreateItem = `INSERT INTO items (name) VALUES ($1) RETURNING id, name`
	sqlPutItem    = `INSERT INTO items (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id, name`
	sqlDeleteItem = `DELETE FROM items WHERE id = $1 RETURNING id, name`
)

// write makes one change and records its event in the same transaction,
// as a service's handler does, and returns the item written.
func (fx fixture) write(t *testing.T, event, q string, args ...any) item {
	t.Helper()
	var it item
	_, err := fx.store.Write(context.Background(), nil, func(tx *store.Tx) error {
		if err := tx.QueryRow(q, args...).Scan(&it.ID, &it.Name); err != nil {
			return err
		}
		return tx.Emit(event, it)
	}, nil)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	return it
}

// put stores item id with name and records an item.updated event.
func (fx fixture) put(t *testing.T, id int, name string) {
	t.Helper()
	fx.write(t, "item.updated", sqlPutItem, id, name)
}

// change makes the three kinds of change and returns the event types and
// data each receiver must get, in order.
func change(t *testing.T, fx fixture) (types []string, data []string) {
	t.Helper()
	created := fx.write(t, "item.created", sqlCreateItem, `signed "<&>"`)
	fx.put(t, 9999, "99")
	fx.write(t, "item.deleted", sqlDeleteItem, created.ID)
	cj, _ := json.Marshal(created) // an item always encodes
	return []string{"item.created", "item.updated", "item.deleted"},
		[]string{string(cj), `{"id":9999,"name":"99"}`, string(cj)}
}

func TestEveryReceiverGetsSignedEventsInOrder(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	fx := start(t, webhooks(a.URL+"/hook", b.URL))
	types, data := change(t, fx)
	ids := map[string]string{}
	for _, r := range []*receiver{a, b} {
		got := r.waitAccepted(t, 3, 5*time.Second)
		for i, d := range got {
			if d.payload.Type != types[i] || !sameJSON(d.payload.Data, data[i]) {
				t.Errorf("%s event %d = %s %s, want %s %s", r.URL, i, d.payload.Type, d.payload.Data, types[i], data[i])
			}
			if !Verify([]byte(secret), d.body, d.header.Get(SignatureHeader)) {
				t.Errorf("event %d: signature %q does not verify over %q", i, d.header.Get(SignatureHeader), d.body)
			}
			if Verify([]byte(secret+"x"), d.body, d.header.Get(SignatureHeader)) {
				t.Errorf("event %d: signature verifies with the wrong key", i)
			}
			if got := d.header.Get(EventIDHeader); got != d.payload.ID || got == "" {
				t.Errorf("event %d: %s = %q, body id %q", i, EventIDHeader, got, d.payload.ID)
			}
			if ct := d.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("event %d: Content-Type %q", i, ct)
			}
			if rid := d.header.Get("X-Request-ID"); rid != d.payload.ID {
				t.Errorf("event %d: X-Request-ID %q, want the event id %q", i, rid, d.payload.ID)
			}
			if ts, err := time.Parse(time.RFC3339, d.payload.Time); err != nil || time.Since(ts) > time.Minute {
				t.Errorf("event %d: time %q (%v), want a recent RFC 3339 time", i, d.payload.Time, err)
			}
			if prev, ok := ids[types[i]]; ok && prev != d.payload.ID {
				t.Errorf("%s: ids differ between receivers: %s, %s", types[i], prev, d.payload.ID)
			}
			ids[types[i]] = d.payload.ID
		}
	}
	if len(ids) != 3 {
		t.Errorf("distinct event ids %v, want 3", ids)
	}
	waitMetric(t, fx.set, "webhook_outbox_backlog", 0)
	waitMetric(t, fx.set, `webhook_deliveries_total{result="delivered"}`, 6)
}

func TestFailingReceiverGetsEveryEventOnceItRecovers(t *testing.T) {
	r := newReceiver(t, func(n int) int {
		switch {
		case n < 3:
			return http.StatusInternalServerError
		case n == 3:
			return http.StatusNotFound // a 4xx is a failure too: the event waits
		}
		return http.StatusOK
	})
	fx := start(t, webhooks(r.URL))
	var want []string
	for range 3 {
		types, _ := change(t, fx)
		want = append(want, types...)
	}
	got := r.waitAccepted(t, len(want), 10*time.Second)
	seen := map[string]bool{}
	for i, d := range got {
		if d.payload.Type != want[i] {
			t.Errorf("accepted event %d is %s, want %s (order per URL)", i, d.payload.Type, want[i])
		}
		if seen[d.payload.ID] {
			t.Errorf("event %s accepted twice", d.payload.ID)
		}
		seen[d.payload.ID] = true
	}
	r.mu.Lock()
	first := r.got[0].payload.ID
	for i := 1; i <= 4; i++ {
		if r.got[i].payload.ID != first {
			t.Errorf("attempt %d carried %s, want a retry of the head %s", i, r.got[i].payload.ID, first)
		}
	}
	r.mu.Unlock()
	waitMetric(t, fx.set, `webhook_deliveries_total{result="failed"}`, 4)
	waitMetric(t, fx.set, "webhook_outbox_backlog", 0)
}

// failFirst answers code to the first n requests, then 200.
func failFirst(n, code int) func(int) int {
	return func(i int) int {
		if i < n {
			return code
		}
		return http.StatusOK
	}
}

func TestMaxAttemptsGivesUpAndMovesOn(t *testing.T) {
	r := newReceiver(t, failFirst(2, http.StatusBadRequest))
	cfg := webhooks(r.URL)
	cfg.MaxAttempts = 2
	fx := start(t, cfg)
	types, _ := change(t, fx)
	got := r.waitAccepted(t, 2, 5*time.Second)
	if got[0].payload.Type != types[1] || got[1].payload.Type != types[2] {
		t.Errorf("accepted %s, %s; want %s, %s after giving up on %s", got[0].payload.Type, got[1].payload.Type, types[1], types[2], types[0])
	}
	waitMetric(t, fx.set, "webhook_events_given_up_total", 1)
}

// TestOpenBreakerSpendsNoAttempts: while a receiver's breaker is open no
// request reaches it, so those claims must not count toward max_attempts;
// the head event is delivered after the cool-down, not given up.
func TestOpenBreakerSpendsNoAttempts(t *testing.T) {
	r := newReceiver(t, failFirst(5, http.StatusInternalServerError)) // opens the breaker: 5 failures in a row
	cfg := webhooks(r.URL)
	cfg.MaxAttempts = 6
	fx := start(t, cfg)
	types, _ := change(t, fx)
	got := r.waitAccepted(t, len(types), 15*time.Second) // the 5s cool-down, then the probe
	for i, d := range got {
		if d.payload.Type != types[i] {
			t.Errorf("accepted event %d is %s, want %s: the head was given up while the breaker was open", i, d.payload.Type, types[i])
		}
	}
	waitMetric(t, fx.set, "webhook_events_given_up_total", 0)
	waitMetric(t, fx.set, `webhook_deliveries_total{result="failed"}`, 5)
}

func TestHangingReceiverIsBoundedByTimeoutAndStopReturns(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	cfg := webhooks(hang.URL)
	cfg.Timeout = 100 * time.Millisecond
	fx := start(t, cfg)
	for i := range 20 {
		start := time.Now()
		fx.put(t, i+1, "1")
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("a write took %s while the receiver hangs: writes must not wait for delivery", took)
		}
	}
	waitMetric(t, fx.set, "webhook_outbox_backlog", 20)
	time.Sleep(300 * time.Millisecond) // a few attempts time out
	start := time.Now()
	fx.d.Stop()
	fx.d.Start() // Cleanup stops it again
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop took %s with a hanging receiver, want about webhooks.timeout", took)
	}
}

func TestSignatureIsHMACOfExactBody(t *testing.T) {
	body := []byte(`{"id":"x","type":"fortune.created","time":"2026-01-01T00:00:00Z","data":{"id":1}}`)
	// Computed with openssl, as the README tells receivers to:
	// printf '%s' "$body" | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
	const want = "sha256=dc1789b48c1b0e7b0159c0114b9ed1181128082768188178a70d63945f8b7ac2"
	got := Sign([]byte(secret), body)
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if !Verify([]byte(secret), body, got) {
		t.Error("Verify rejects Sign's own signature")
	}
	for _, bad := range []string{"", got[7:], "sha1=" + got[7:], got[:len(got)-1] + "0", "sha256=zz"} {
		if bad != got && Verify([]byte(secret), body, bad) {
			t.Errorf("Verify accepts %q", bad)
		}
	}
	if Verify([]byte(secret), append(bytes.Clone(body), ' '), got) {
		t.Error("Verify accepts a changed body")
	}
}

func sameJSON(got []byte, want string) bool {
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return bytes.Equal(gb, wb)
}

// waitMetric waits until series in set reads want.
func waitMetric(t *testing.T, set *vm.Set, series string, want float64) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var buf bytes.Buffer
		set.WritePrometheus(&buf)
		for _, line := range strings.Split(buf.String(), "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				last = v
				var f float64
				if err := json.Unmarshal([]byte(v), &f); err == nil && f == want {
					return
				}
			}
		}
	}
	t.Fatalf("%s = %q, want %v", series, last, want)
}

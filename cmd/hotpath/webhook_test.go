package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/webhook"
)

const hookSecret = "hook-secret-0123456789abcdef0123456789"

// hookEvent is one delivery a receiver accepted.
type hookEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
	// Traceparent is the header the delivery carried.
	Traceparent string `json:"-"`
}

// hookReceiver is a webhook receiver on a loopback port that can be
// started late or hang. It checks every signature and records what it
// accepted.
type hookReceiver struct {
	t    *testing.T
	addr string
	hang chan struct{} // when non-nil, requests wait for it to close

	mu       sync.Mutex
	accepted []hookEvent
	srv      *http.Server
}

// newHookReceiver reserves a port; the receiver answers once listen is called.
func newHookReceiver(t *testing.T) *hookReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, addr: ln.Addr().String()}
	ln.Close() // nothing answers there until listen: connections are refused
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/hooks/hotpath" }

func (r *hookReceiver) listen() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	r.t.Cleanup(func() {
		if r.hang != nil {
			close(r.hang)
		}
		_ = r.srv.Close()
	})
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !webhook.Verify([]byte(hookSecret), body, req.Header.Get(webhook.SignatureHeader)) {
		r.t.Errorf("delivery %s: bad signature %q", body, req.Header.Get(webhook.SignatureHeader))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev hookEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(webhook.EventIDHeader) || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("delivery %s (%v): id header %q, content type %q", body, err, req.Header.Get(webhook.EventIDHeader), req.Header.Get("Content-Type"))
	}
	ev.Traceparent = req.Header.Get("Traceparent")
	r.mu.Lock()
	r.accepted = append(r.accepted, ev)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wait returns the accepted events once there are n, failing after within.
func (r *hookReceiver) wait(t *testing.T, n int, within time.Duration) []hookEvent {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		got := slices.Clone(r.accepted)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver accepted %d events in %s, want %d: %+v", len(got), within, n, got)
		}
	}
}

func hookArgs(r *hookReceiver) []string {
	return []string{"--webhooks.urls=" + r.url(), "--webhooks.secret=" + hookSecret, "--webhooks.timeout=1s", "--auth.tokens=" + apiToken}
}

// apiChanges makes one change of each kind through /api/v1 and returns the
// events they must produce, in order.
func apiChanges(t *testing.T, p *proc, world int, msg string) []hookEvent {
	t.Helper()
	resp, body := sendJSON(t, "POST", p.app+"/api/v1/fortunes", `{"message":`+strconv.Quote(msg)+`}`)
	var f struct {
		ID      int    `json:"id"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &f); resp.StatusCode != 201 || err != nil {
		t.Fatalf("POST fortune: %d %s %v", resp.StatusCode, body, err)
	}
	if resp, body := sendJSON(t, "PUT", fmt.Sprintf("%s/api/v1/worlds/%d", p.app, world), `{"randomNumber":4321}`); resp.StatusCode != 200 {
		t.Fatalf("PUT world: %d %s", resp.StatusCode, body)
	}
	if resp, body := sendJSON(t, "DELETE", fmt.Sprintf("%s/api/v1/fortunes/%d", p.app, f.ID), ""); resp.StatusCode != 204 {
		t.Fatalf("DELETE fortune: %d %s", resp.StatusCode, body)
	}
	fj, _ := json.Marshal(f)
	return []hookEvent{
		{Type: "fortune.created", Data: fj},
		{Type: "world.updated", Data: json.RawMessage(fmt.Sprintf(`{"id":%d,"randomNumber":4321}`, world))},
		{Type: "fortune.deleted", Data: fj},
	}
}

// checkEvents compares accepted events with want: same types and data in
// the same order, each id once.
func checkEvents(t *testing.T, got, want []hookEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("accepted %d events, want %d:\n%+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || !sameJSONText(g.Data, w.Data) {
			t.Errorf("event %d = %s %s, want %s %s", i, g.Type, g.Data, w.Type, w.Data)
		}
		if _, err := time.Parse(time.RFC3339, g.Time); err != nil {
			t.Errorf("event %d time %q: %v", i, g.Time, err)
		}
		if ids[g.ID] || g.ID == "" {
			t.Errorf("event %d id %q empty or repeated", i, g.ID)
		}
		ids[g.ID] = true
	}
}

func sameJSONText(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestWebhooksDeliverAPIChangesSigned(t *testing.T) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			r := newHookReceiver(t)
			r.listen()
			p := startProc(t, append(d.args(t), hookArgs(r)...)...)
			defer p.stop(t)
			waitReady(t, p)
			want := apiChanges(t, p, 17, `webhook "<b>" & ünïcode`)
			// /updates changes Worlds too, but is the benchmark path: no events.
			if resp, _ := get(t, "GET", p.app+"/updates?queries=5"); resp.StatusCode != 200 {
				t.Fatalf("/updates: %d", resp.StatusCode)
			}
			r.wait(t, 3, 10*time.Second)
			time.Sleep(300 * time.Millisecond) // anything extra would arrive by now
			checkEvents(t, r.wait(t, 3, 0), want)
			waitBacklog(t, p, func(v float64) bool { return v == 0 }, "= 0 after delivery")
			if v := metricValue(t, p, `webhook_deliveries_total{result="delivered"}`); v != 3 {
				t.Errorf("webhook_deliveries_total{delivered} = %v, want 3", v)
			}
		})
	}
}

func TestWebhooksSurviveSIGKILLWhileReceiverIsDown(t *testing.T) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			r := newHookReceiver(t) // down: connections are refused
			args := append(d.args(t), hookArgs(r)...)
			p := startProc(t, args...)
			waitReady(t, p)
			var want []hookEvent
			for i := range 3 {
				want = append(want, apiChanges(t, p, 100+i, fmt.Sprintf("kept %d", i))...)
			}
			// The gauge is refreshed every second; attempts fail meanwhile.
			waitBacklog(t, p, func(v float64) bool { return v == float64(len(want)) }, fmt.Sprintf("= %d before the kill", len(want)))
			if code := readyzStatus(t, p); code != 200 {
				t.Errorf("/readyz = %d with the receiver down, want 200: webhooks are not a readiness dependency", code)
			}
			p.signal(t, syscall.SIGKILL)
			p.wait(t, 10*time.Second)

			r.listen()
			p2 := startProc(t, args...) // same database
			defer p2.stop(t)
			r.wait(t, len(want), 30*time.Second)
			time.Sleep(300 * time.Millisecond) // anything extra would arrive by now
			checkEvents(t, r.wait(t, len(want), 0), want)
		})
	}
}

// waitBacklog waits up to 5s for webhook_outbox_backlog to satisfy ok.
func waitBacklog(t *testing.T, p *proc, ok func(float64) bool, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v := metricValue(t, p, "webhook_outbox_backlog")
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook_outbox_backlog = %v, want %s", v, want)
		}
	}
}

func readyzStatus(t *testing.T, p *proc) int {
	t.Helper()
	resp, _ := get(t, "GET", p.admin+"/readyz")
	return resp.StatusCode
}

func TestWebhookReplicasOnOnePostgresDeliverEachEventOnce(t *testing.T) {
	d := drivers()[1]
	r := newHookReceiver(t)
	r.listen()
	args := append(d.args(t), hookArgs(r)...)
	a := startProc(t, args...)
	defer a.stop(t)
	b := startProc(t, args...)
	defer b.stop(t)
	waitReady(t, a)
	waitReady(t, b)
	var want []hookEvent
	for i := range 4 {
		p := a
		if i%2 == 1 {
			p = b
		}
		want = append(want, apiChanges(t, p, 200+i, fmt.Sprintf("replica %d", i))...)
	}
	r.wait(t, len(want), 15*time.Second)
	time.Sleep(time.Second) // both replicas poll several times: a duplicate would show now
	got := r.wait(t, len(want), 0)
	// Order per URL follows commit order, which here is request order.
	checkEvents(t, got, want)
}

func TestHangingWebhookReceiverDoesNotSlowTheAPI(t *testing.T) {
	p99 := func(hang bool) (time.Duration, *proc) {
		r := newHookReceiver(t)
		if hang {
			r.hang = make(chan struct{})
		}
		r.listen()
		p := startProc(t, append([]string{"--webhooks.concurrency=2"}, hookArgs(r)...)...)
		waitReady(t, p)
		var lat []time.Duration
		for i := range 200 {
			start := time.Now()
			resp, body := sendJSON(t, "PUT", fmt.Sprintf("%s/api/v1/worlds/%d", p.app, i+1), `{"randomNumber":7}`)
			lat = append(lat, time.Since(start))
			if resp.StatusCode != 200 {
				t.Fatalf("PUT %d: %d %s", i, resp.StatusCode, body)
			}
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100], p
	}
	fast, pf := p99(false)
	pf.stop(t)
	slow, ps := p99(true)
	defer ps.stop(t)
	t.Logf("PUT /api/v1/worlds p99: %s with a fast receiver, %s with a hanging one", fast, slow)
	// Loose, for a shared machine: delivery waits (webhooks.timeout = 1s)
	// must not show up in API latency at all.
	if slow > 5*fast+100*time.Millisecond || slow > 500*time.Millisecond {
		t.Errorf("p99 with a hanging receiver %s, fast receiver %s: the API waits for delivery", slow, fast)
	}
	waitBacklog(t, ps, func(v float64) bool { return v >= 150 }, ">= 150: most of the 200 events wait for the hanging receiver")
	if code := readyzStatus(t, ps); code != 200 {
		t.Errorf("/readyz = %d with a hanging receiver, want 200", code)
	}
}

// TestConfiguredUpstreamsGetClients: every [upstreams.NAME] table becomes a
// client at start, whose series are in /metrics before its first call.
func TestConfiguredUpstreamsGetClients(t *testing.T) {
	p := startProc(t, "--upstreams.payments.url=http://127.0.0.1:1/v1", "--upstreams.ledger.url=http://127.0.0.1:1")
	defer p.stop(t)
	for _, name := range []string{"payments", "ledger"} {
		if v := metricValue(t, p, `upstream_breaker_state{upstream="`+name+`"}`); v != 0 {
			t.Errorf("%s: breaker state %v, want 0 (closed)", name, v)
		}
		if v := metricValue(t, p, `upstream_requests_total{upstream="`+name+`"}`); v != 0 {
			t.Errorf("%s: %v requests before any call, want 0", name, v)
		}
	}
	if !strings.Contains(p.stderr.String(), `"upstream":"payments"`) {
		t.Errorf("start-up log does not name the payments client:\n%s", p.stderr.String())
	}
}

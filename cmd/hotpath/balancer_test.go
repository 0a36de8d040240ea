package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// balancer plays the part of a Kubernetes Service in front of hotpath
// replicas: it polls each backend's /readyz and sends every new request to
// the next ready backend, round-robin, over keep-alive connections. A
// backend that fails its probe gets no new requests; connections already
// open to it finish what they carry.
type balancer struct {
	url       string // http://127.0.0.1:port of the balancer itself
	pollEvery time.Duration
	srv       *httptest.Server

	mu       sync.Mutex
	backends []*backend
	next     int

	// retries counts GET and HEAD requests sent again to another backend
	// after a connection error. Other methods are never resent: a PUT that
	// may have reached a backend is answered 502 instead.
	retries atomic.Int64
	// resends counts requests the backend Transport itself sent a second
	// time on a fresh connection, which it does when a reused keep-alive
	// connection turns out closed before anything was read back.
	resends atomic.Int64
	// failed counts requests answered 502 or 503 by the balancer itself.
	failed atomic.Int64
}

// backend is one replica as the balancer sees it.
type backend struct {
	name  string
	app   string // base URL of the application listener
	admin string // base URL of the admin listener
	tr    *http.Transport

	ready atomic.Bool
	// drained is set when /readyz answered 503 after having answered 200:
	// the backend left the rotation because it said so, while its
	// listener was still open, not because it stopped answering.
	drained atomic.Bool
	served  atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// newBalancer starts a balancer on a loopback port with no backends.
func newBalancer(t *testing.T, pollEvery time.Duration) *balancer {
	t.Helper()
	b := &balancer{pollEvery: pollEvery}
	b.srv = httptest.NewServer(b)
	b.url = b.srv.URL
	t.Cleanup(func() {
		b.srv.Close()
		b.mu.Lock()
		all := append([]*backend(nil), b.backends...)
		b.mu.Unlock()
		for _, be := range all {
			b.remove(be)
		}
	})
	return b
}

// add puts p behind the balancer and starts probing it. It joins the
// rotation once its first probe answers 200.
func (b *balancer) add(name string, p *proc) *backend {
	be := &backend{
		name:  name,
		app:   p.app,
		admin: p.admin,
		tr:    &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	b.mu.Lock()
	b.backends = append(b.backends, be)
	b.mu.Unlock()
	go be.probe(b.pollEvery)
	return be
}

// remove stops probing be and forgets it, as when a Pod object is gone.
func (b *balancer) remove(be *backend) {
	b.mu.Lock()
	for i, x := range b.backends {
		if x == be {
			b.backends = append(b.backends[:i], b.backends[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	select {
	case <-be.stop:
	default:
		close(be.stop)
	}
	<-be.done
	be.tr.CloseIdleConnections()
}

// probe asks /readyz every interval until stopped. Any answer but 200,
// including no answer, takes the backend out of the rotation.
func (be *backend) probe(every time.Duration) {
	defer close(be.done)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: every * 10}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, answered := false, false
		if resp, err := c.Get(be.admin + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body) // keeps the probe connection reusable
			resp.Body.Close()
			ok, answered = resp.StatusCode == http.StatusOK, true
		}
		if !ok && answered && be.ready.Load() {
			be.drained.Store(true)
		}
		be.ready.Store(ok)
		select {
		case <-be.stop:
			return
		case <-tick.C:
		}
	}
}

// waitReady waits until the balancer's own probe has seen be ready or not,
// as want says, and returns how long that took.
func (be *backend) waitReady(t *testing.T, want bool, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for be.ready.Load() != want {
		if time.Since(start) > timeout {
			t.Fatalf("balancer: backend %s not ready=%v after %s", be.name, want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// pick returns the next ready backend after the last one picked, skipping
// skip, or nil when none is ready.
func (b *balancer) pick(skip *backend) *backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		be := b.backends[b.next%len(b.backends)]
		b.next++
		if be != skip && be.ready.Load() {
			return be
		}
	}
	return nil
}

// hopHeaders describe one connection, not the message, so a proxy must not
// pass them on (RFC 9110 §7.6.1). A backend's Connection: close while it
// drains is for the balancer's connection to it, not the client's.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP forwards r to a ready backend and copies the answer back.
func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	idempotent := r.Method == http.MethodGet || r.Method == http.MethodHead
	var last *backend
	for attempt := 0; ; attempt++ {
		be := b.pick(last)
		if be == nil {
			b.failed.Add(1)
			w.Header().Set("X-Backend", "none")
			http.Error(w, "no ready backend", http.StatusServiceUnavailable)
			return
		}
		resp, err := b.forward(be, r, body)
		if err != nil {
			if idempotent && attempt < 2 {
				b.retries.Add(1)
				last = be
				continue
			}
			b.failed.Add(1)
			w.Header().Set("X-Backend", be.name)
			http.Error(w, "backend "+be.name+": "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		be.served.Add(1)
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		for _, h := range hopHeaders {
			w.Header().Del(h)
		}
		w.Header().Set("X-Backend", be.name)
		w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(w, resp.Body); err != nil {
			// The status is sent: abort the connection so the client sees
			// a truncated answer rather than a short one that looks whole.
			panic(http.ErrAbortHandler)
		}
		return
	}
}

// forward sends one attempt of r to be, counting the Transport's own
// resends (one more connection obtained for the same request).
func (b *balancer) forward(be *backend, r *http.Request, body []byte) (*http.Response, error) {
	conns := 0
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		conns++
		if conns > 1 {
			b.resends.Add(1)
		}
	}}
	ctx := httptrace.WithClientTrace(r.Context(), trace)
	out, err := http.NewRequestWithContext(ctx, r.Method, be.app+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range r.Header {
		out.Header[k] = vs
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	return be.tr.RoundTrip(out)
}

package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
)

// oneShot closes each connection after its answer, so no keep-alive
// connection outlives a test.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func TestStopLetsInFlightRequestsFinish(t *testing.T) {
	entered := make(chan struct{})
	cfg := config.Default().Server
	s := New(cfg, func(ctx *fasthttp.RequestCtx) {
		close(entered)
		time.Sleep(500 * time.Millisecond)
		ctx.SetBodyString("done")
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	url := "http://" + s.Addr().String() + "/"
	type result struct {
		status int
		body   string
		close  bool
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := oneShot.Get(url)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), resp.Close, err}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	r := <-got
	if r.err != nil || r.status != 200 || r.body != "done" || !r.close {
		t.Errorf("in-flight request during Stop: %+v, want 200 \"done\" with Connection: close", r)
	}
	if _, err := oneShot.Get(url); err == nil {
		t.Errorf("listener still accepts after Stop")
	}
}

func TestStopGivesUpAtTheTimeout(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	s := New(config.Default().Server, func(ctx *fasthttp.RequestCtx) {
		close(entered)
		<-release
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := oneShot.Get("http://" + s.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err == nil {
		t.Errorf("Stop returned nil with a request still running past the timeout")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Stop took %s, want about the 200ms timeout", took)
	}
	close(release)
	<-answered // the request ends after all, so nothing outlives the test
}

func TestRedactQuoted(t *testing.T) {
	for in, want := range map[string]string{
		`no quotes here`:                          `no quotes here`,
		`invalid header value "Bearer abc"`:       `invalid header value "…"`,
		`uri "a\"b" in "GET \"x\" HTTP/1.1": err`: `uri "…" in "…": err`,
		`escaped backslash "a\\" then "b"`:        `escaped backslash "…" then "…"`,
		`unterminated "secret`:                    `unterminated "…"`,
		`""`:                                      `"…"`,
	} {
		if got := redactQuoted(in); got != want {
			t.Errorf("redactQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStopRightAfterServeReturns: a SIGTERM during start-up with no drain
// stops the server before fasthttp has taken the listener; Stop must still
// end serving and return.
func TestStopRightAfterServeReturns(t *testing.T) {
	for i := range 30 {
		s := New(config.Default().Server, func(*fasthttp.RequestCtx) {}, slog.New(slog.DiscardHandler))
		ln, err := Listen("127.0.0.1:0", false)
		if err != nil {
			t.Fatal(err)
		}
		s.Serve(ln)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop(ctx) }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("round %d: Stop: %v", i, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("round %d: Stop right after Serve still waiting after 3s", i)
		}
		cancel()
	}
}

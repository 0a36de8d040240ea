package wrk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotpath/hotpath/bench/internal/testskip"
)

// needWrk skips without wrk, except under CI where the bench must be checked.
func needWrk(t *testing.T) {
	t.Helper()
	if _, err := Path(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		testskip.Skip(t, "wrk tests", err.Error())
	}
}

func run(t *testing.T, o Options) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if o.Duration == 0 {
		o.Duration = time.Second
	}
	if o.Connections == 0 {
		o.Connections = 4
	}
	r, out, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run(%+v): %v\n%s", o, err, out)
	}
	return r
}

// helloServer answers every request with Hello, World! and counts them.
func helloServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	served := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "Hello, World!")
	}))
	t.Cleanup(srv.Close)
	return srv, served
}

func TestRunMeasuresRealServer(t *testing.T) {
	needWrk(t)
	srv, served := helloServer(t)

	r := run(t, Options{URL: srv.URL + "/plaintext"})
	if r.Requests <= 0 || r.RPS() <= 0 {
		t.Fatalf("requests %d, rps %f; want both > 0", r.Requests, r.RPS())
	}
	// wrk counts only completed responses, and the server saw each of them.
	if got := served.Load(); got < r.Requests {
		t.Errorf("server answered %d requests, wrk reports %d", got, r.Requests)
	}
	if r.Errors.Total() != 0 {
		t.Errorf("errors %+v, want none", r.Errors)
	}
	l := r.LatencyUS
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) || l.Max <= 0 {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if d := time.Duration(r.DurationUS) * time.Microsecond; d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("duration %s, want about 1s", d)
	}
}

func TestRunCountsErrorStatuses(t *testing.T) {
	needWrk(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer srv.Close()

	r := run(t, Options{URL: srv.URL})
	if r.Requests == 0 || r.Errors.Status != r.Requests {
		t.Fatalf("requests %d, status errors %d; want every request counted as an error", r.Requests, r.Errors.Status)
	}
}

func TestPipelineSendsDepthRequestsPerWrite(t *testing.T) {
	needWrk(t)
	srv, served := helloServer(t)

	r := run(t, Options{URL: srv.URL + "/plaintext", Scripts: []string{"pipeline.lua"}, Args: []string{"8"}, Connections: 2})
	if r.Requests == 0 || r.Errors.Total() != 0 {
		t.Fatalf("requests %d, errors %+v", r.Requests, r.Errors)
	}
	// Responses arrive in batches of 8 per connection; wrk may stop mid-batch
	// only on the last batch of each connection.
	if got := served.Load(); got < r.Requests || got > r.Requests+2*8 {
		t.Errorf("server answered %d, wrk counted %d: pipelined responses are not counted one by one", got, r.Requests)
	}
}

func TestRunSendsHeadersOnEveryRequest(t *testing.T) {
	needWrk(t)
	var with, without atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") == "zstd" && r.Header.Get("X-Test") == "a: b" {
			with.Add(1)
		} else {
			without.Add(1)
		}
		io.WriteString(w, "Hello, World!")
	}))
	defer srv.Close()

	r := run(t, Options{URL: srv.URL, Headers: []string{"Accept-Encoding: zstd", "X-Test: a: b"}, Connections: 2})
	if r.Requests == 0 || with.Load() < r.Requests || without.Load() != 0 {
		t.Errorf("wrk counted %d requests; %d carried both headers, %d did not", r.Requests, with.Load(), without.Load())
	}
}

// recorder keeps what the API scripts send.
type recorder struct {
	mu       sync.Mutex
	requests []string // "METHOD path auth body"
}

func (rec *recorder) handler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // a short read only shortens the record
	rec.mu.Lock()
	if len(rec.requests) < 10000 {
		rec.requests = append(rec.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
	}
	rec.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func TestPostJSONScriptSendsAuthorizedJSON(t *testing.T) {
	needWrk(t)
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(rec.handler))
	defer srv.Close()

	run(t, Options{URL: srv.URL, Scripts: []string{"post_json.lua"}, Args: []string{"sekret"}, Connections: 1})
	if len(rec.requests) == 0 {
		t.Fatal("no requests reached the server")
	}
	for _, got := range rec.requests[:min(len(rec.requests), 20)] {
		if !strings.HasPrefix(got, `POST /api/v1/fortunes Bearer sekret {"message":"load test fortune `) {
			t.Fatalf("request %q, want an authorized JSON POST to /api/v1/fortunes", got)
		}
	}
}

func TestMixedScriptReadsAndWrites(t *testing.T) {
	needWrk(t)
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(rec.handler))
	defer srv.Close()

	t.Setenv("TOKEN", "from-env")
	run(t, Options{URL: srv.URL, Scripts: []string{"mixed.lua"}, Args: []string{"", "30"}, Connections: 2})
	var gets, puts int
	for _, got := range rec.requests {
		switch {
		case strings.HasPrefix(got, "GET /api/v1/worlds/"):
			gets++
		case strings.HasPrefix(got, "PUT /api/v1/worlds/") && strings.Contains(got, ` Bearer from-env {"randomNumber":`):
			puts++
		default:
			t.Fatalf("unexpected request %q", got)
		}
	}
	// 30 % writes: over hundreds of requests both kinds must appear in
	// roughly that share.
	if total := gets + puts; total < 200 || puts < total/10 || puts > total/2 {
		t.Errorf("%d GETs and %d PUTs; want about 30 %% PUTs over at least 200 requests", gets, puts)
	}
}

func TestParseRejectsOutputWithoutReport(t *testing.T) {
	for _, out := range []string{
		"Running 1s test @ http://127.0.0.1:1\nRequests/sec: 10\n",
		"WRK_JSON {\"requests\":\n",
	} {
		if _, err := Parse([]byte(out)); err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", out)
		}
	}
}

func TestParseReadsReportLine(t *testing.T) {
	out := "Running 1s test\nRequests/sec: 1.00\n" +
		`WRK_JSON {"requests":2000,"duration_us":2000000,"bytes":5,"errors":{"connect":1,"read":2,"write":3,"status":4,"timeout":5},` +
		`"latency_us":{"min":1,"mean":2.5,"stdev":0.5,"max":90,"p50":2,"p75":3,"p90":4,"p99":50,"p999":80}}` + "\n"
	r, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS() != 1000 || r.Errors.Total() != 15 || r.LatencyUS.P999 != 80 || r.LatencyUS.Mean != 2.5 {
		t.Errorf("Parse gave %+v, rps %f", r, r.RPS())
	}
}

func TestRunWithoutWrkSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := Run(context.Background(), Options{URL: "http://127.0.0.1:1"})
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get install wrk") {
		t.Errorf("err = %v, want ErrMissing naming apt-get install wrk", err)
	}
}

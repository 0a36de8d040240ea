package main

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigErrorsExitWithStatusTwo(t *testing.T) {
	cases := []struct {
		env     []string
		args    []string
		wantKey string
	}{
		{env: []string{"HOTPATH_SERVER__ADRR=:1"}, wantKey: "server.adrr"},
		{args: []string{"--server.read_timeout=fast"}, wantKey: "server.read_timeout"},
		{args: []string{"--log.access_sample=2"}, wantKey: "log.access_sample"},
		{args: []string{"--server.addr=nowhere"}, wantKey: "server.addr"},
		{args: []string{"-config", "missing.toml"}, wantKey: "-config"},
	}
	for _, tc := range cases {
		code, _, stderr := runExit(t, tc.env, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.wantKey) {
			t.Errorf("env %v args %v: exit %d, stderr %q; want exit 2 and one line naming %s", tc.env, tc.args, code, stderr, tc.wantKey)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	code, stdout, _ := runExit(t, nil, "-version")
	if code != 0 || !strings.HasPrefix(stdout, "hotpath ") {
		t.Errorf("-version: exit %d stdout %q, want 0 and \"hotpath <version>\"", code, stdout)
	}
}

// TestHotEndpointsFollowTechEmpowerRules checks the headers and bodies the
// TechEmpower verifier checks, strictly.
func TestHotEndpointsFollowTechEmpowerRules(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	cases := []struct {
		path, contentType, body string
	}{
		{"/plaintext", "text/plain", "Hello, World!"},
		{"/json", "application/json", `{"message":"Hello, World!"}`},
	}
	for _, tc := range cases {
		resp, body := get(t, "GET", p.app+tc.path)
		check := func(what string, got, want any) {
			t.Helper()
			if got != want {
				t.Errorf("GET %s: %s = %v, want %v", tc.path, what, got, want)
			}
		}
		check("status", resp.StatusCode, 200)
		check("body", body, tc.body)
		check("Content-Type", resp.Header.Get("Content-Type"), tc.contentType)
		check("Server", resp.Header.Get("Server"), "hotpath")
		check("Content-Length", resp.Header.Get("Content-Length"), itoa(len(tc.body)))
		check("X-Content-Type-Options", resp.Header.Get("X-Content-Type-Options"), "nosniff")
		if _, err := time.Parse(time.RFC1123, resp.Header.Get("Date")); err != nil || !strings.HasSuffix(resp.Header.Get("Date"), " GMT") {
			t.Errorf("GET %s: Date %q is not an RFC 1123 GMT date", tc.path, resp.Header.Get("Date"))
		}
		head, headBody := get(t, "HEAD", p.app+tc.path)
		check("HEAD status", head.StatusCode, 200)
		check("HEAD body", headBody, "")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n) // an int always encodes
	return string(b)
}

func TestDateAdvancesEverySecond(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	first, _ := get(t, "GET", p.app+"/plaintext")
	time.Sleep(1100 * time.Millisecond)
	second, _ := get(t, "GET", p.app+"/plaintext")
	if first.Header.Get("Date") == second.Header.Get("Date") {
		t.Errorf("Date %q did not change after 1.1s", first.Header.Get("Date"))
	}
}

func TestErrorsAreProblemDetails(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/no/such/thing", 404, ""},
		{"GET", "/%3Cscript%3Ealert(1)%3C/script%3E", 404, ""},
		{"POST", "/json", 405, "GET, HEAD, OPTIONS"},
		{"DELETE", "/plaintext", 405, "GET, HEAD, OPTIONS"},
		{"GET", "/plaintext/", 404, ""},
	}
	for _, tc := range cases {
		resp, body := get(t, tc.method, p.app+tc.path)
		var pd struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: status %d type %q, want %d application/problem+json", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			continue
		}
		if err := json.Unmarshal([]byte(body), &pd); err != nil || pd.Status != tc.status || pd.Title == "" || pd.Type == "" {
			t.Errorf("%s %s: body %q is not a problem with status %d (%v)", tc.method, tc.path, body, tc.status, err)
		}
		if resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "script") {
			t.Errorf("%s %s: body %q reflects the request", tc.method, tc.path, body)
		}
	}
}

func TestRequestIDIsHonouredOrGenerated(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	resp, _ := get(t, "GET", p.app+"/plaintext", "X-Request-ID", "trace-42.abc")
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42.abc" {
		t.Errorf("valid incoming id: echoed %q, want trace-42.abc", got)
	}
	seen := map[string]bool{}
	for _, bad := range []string{"", strings.Repeat("a", 129), "has space", "tab\tbed", "é"} {
		resp, _ := get(t, "GET", p.app+"/plaintext", "X-Request-ID", bad)
		got := resp.Header.Get("X-Request-Id")
		if got == "" || got == bad || seen[got] {
			t.Errorf("incoming id %q: response id %q, want a new unique id", bad, got)
		}
		seen[got] = true
	}
	resp, _ = get(t, "GET", p.app+"/plaintext", "X-Request-ID", strings.Repeat("b", 128))
	if got := resp.Header.Get("X-Request-Id"); got != strings.Repeat("b", 128) {
		t.Errorf("128-character id not honoured: got %q", got)
	}
}

func TestAdminEndpointsLiveOnlyOnAdminPort(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	for range 3 {
		get(t, "GET", p.app+"/plaintext")
	}
	get(t, "GET", p.app+"/missing")
	get(t, "POST", p.app+"/json")
	get(t, "OPTIONS", p.app+"/json")

	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := get(t, "GET", p.admin+path); resp.StatusCode != 200 {
			t.Errorf("admin %s: %d %q, want 200", path, resp.StatusCode, body)
		}
	}
	resp, metrics := get(t, "GET", p.admin+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("admin /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`http_requests_total{route="/plaintext",method="GET",code="200"} 3`,
		`http_requests_total{route="unmatched",method="GET",code="404"} 1`,
		`http_requests_total{route="unmatched",method="POST",code="405"} 1`,
		`http_requests_total{route="unmatched",method="OPTIONS",code="200"} 1`,
		`http_request_duration_seconds_bucket{route="/plaintext",method="GET",le="0.0001"}`,
		`http_request_duration_seconds_count{route="/plaintext",method="GET"} 3`,
		"http_requests_in_flight 0",
		"access_log_dropped_total 0",
		"http_overload_rejections_total 0",
		"go_goroutines",
		"process_resident_memory_bytes",
		"go_gomaxprocs 2",
		"# TYPE http_requests_total counter",
		"# TYPE http_request_duration_seconds histogram",
		"# TYPE http_requests_in_flight gauge",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Prometheus refuses a scrape that repeats a series.
	seen := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		series, _, _ := strings.Cut(line, " ")
		if series == "" || strings.HasPrefix(series, "#") {
			continue
		}
		if seen[series] {
			t.Errorf("/metrics repeats the series %s", series)
		}
		seen[series] = true
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, _ := get(t, "POST", p.admin+path); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST admin %s: %d, Allow %q, want 405 with Allow: GET, HEAD", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/debug/pprof/"} {
		if resp, _ := get(t, "GET", p.app+path); resp.StatusCode != 404 {
			t.Errorf("app port %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, _ := get(t, "GET", p.admin+"/debug/pprof/"); resp.StatusCode != 404 {
		t.Errorf("pprof with admin.pprof=false: %d, want 404", resp.StatusCode)
	}
}

func TestPprofWhenEnabled(t *testing.T) {
	p := startProc(t, "--admin.pprof=true")
	defer p.stop(t)
	resp, body := get(t, "GET", p.admin+"/debug/pprof/")
	if resp.StatusCode != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d, want 200 listing profiles", resp.StatusCode)
	}
}

func TestAccessLogSampling(t *testing.T) {
	for _, tc := range []struct {
		sample string
		want   int
	}{{"0", 0}, {"1", 20}} {
		p := startProc(t, "--log.access_sample="+tc.sample)
		for range 20 {
			get(t, "GET", p.app+"/json?x=1", "User-Agent", "sampler-test")
		}
		p.stop(t) // flushes the log
		lines := accessLines(t, p.stdout.String())
		if len(lines) != tc.want {
			t.Errorf("access_sample %s: %d lines, want %d", tc.sample, len(lines), tc.want)
			continue
		}
		for _, l := range lines {
			for _, field := range []string{"time", "request_id", "method", "route", "path", "status", "duration_ms", "bytes_in", "bytes_out", "remote_addr", "user_agent"} {
				if _, ok := l[field]; !ok {
					t.Errorf("access line %v lacks %s", l, field)
				}
			}
			if l["path"] != "/json?x=1" || l["route"] != "/json" || l["user_agent"] != "sampler-test" || l["status"] != float64(200) {
				t.Errorf("access line %v has wrong values", l)
			}
		}
	}
}

// TestDrainSequence follows one SIGTERM: readiness fails at once, the app
// keeps serving with Connection: close for shutdown.drain, then the
// listener closes, logs are flushed and the process exits 0.
func TestDrainSequence(t *testing.T) {
	p := startProc(t, "--shutdown.drain=2s", "--log.access_sample=1")
	if resp, _ := get(t, "GET", p.admin+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz before SIGTERM: %d", resp.StatusCode)
	}
	sent := time.Now()
	p.signal(t, syscall.SIGTERM)

	deadline := time.Now().Add(time.Second)
	for {
		resp, _ := get(t, "GET", p.admin+"/readyz")
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d 1s after SIGTERM", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body := get(t, "GET", p.app+"/plaintext", "X-Request-ID", "during-drain")
	if resp.StatusCode != 200 || body != "Hello, World!" || !resp.Close {
		t.Errorf("during drain: %d %q close=%v, want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, p.stderr.String())
	}
	if took := time.Since(sent); took < 2*time.Second {
		t.Errorf("exited %s after SIGTERM, before shutdown.drain (2s) ended", took)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(p.app, "http://"), time.Second); err == nil {
		t.Errorf("app listener still accepts after exit")
	}
	if !strings.Contains(p.stdout.String(), `"request_id":"during-drain"`) {
		t.Errorf("access log lost the drain-time request; stdout:\n%s", p.stdout.String())
	}
	for _, phase := range []string{`"msg":"draining"`, `"msg":"stopping"`, `"msg":"stopped"`} {
		if !strings.Contains(p.stderr.String(), phase) {
			t.Errorf("application log lacks phase %s", phase)
		}
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	p := startProc(t, "--shutdown.drain=30s", "--log.access_sample=1")
	for range 3 {
		get(t, "GET", p.app+"/plaintext")
	}
	p.signal(t, syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 5*time.Second); code == 0 {
		t.Errorf("exit status 0 after a second signal, want non-zero (interrupted drain)")
	}
	if n := strings.Count(p.stdout.String(), `"path":"/plaintext"`); n != 3 {
		t.Errorf("%d of 3 access-log lines written before the forced exit, want all:\n%s", n, p.stdout.String())
	}
}

package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/internal/testskip"
	"github.com/hotpath/hotpath/bench/wrk"
)

// startGnet builds the gnet peer, which needs no database, and starts it the
// way the runner starts every server.
func startGnet(t *testing.T) *server {
	t.Helper()
	return startGnetWith(t, gnetLaunch(t))
}

// gnetLaunch builds the gnet peer and says how to start it.
func gnetLaunch(t *testing.T) launch {
	t.Helper()
	work := t.TempDir()
	l := launch{binDir: filepath.Join(work, "bin"), driver: "postgres", logDir: work}
	if runtime.NumCPU() >= 2 {
		l.cpus = "0"
	}
	if err := buildPeers(context.Background(), []string{"gnet"}, l.binDir); err != nil {
		t.Fatal(err)
	}
	return l
}

func startGnetWith(t *testing.T, l launch) *server {
	t.Helper()
	ctx := context.Background()
	s, err := l.start(ctx, "gnet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	if l.cpus != "" {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), "Cpus_allowed_list:\t0\n") {
			t.Errorf("server not pinned to CPU 0:\n%s", status)
		}
	}
	return s
}

// TestThroughputReportFromRealRun drives a real server with a short real wrk
// run and checks every file of the report against the measured runs.
func TestThroughputReportFromRealRun(t *testing.T) {
	needWrk(t)
	s := startGnet(t)
	o := options{endpoints: []string{"plaintext", "json", "db"}, duration: time.Second, connections: 8, threads: 1,
		rounds: 2, pipeline: 4, queries: 20, driver: "postgres"}
	loadCPUs := ""
	if runtime.NumCPU() >= 2 {
		loadCPUs = "1"
	}
	tp, problems := throughput(context.Background(), o, []*server{s}, loadCPUs, "bench -test")
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	// gnet serves no /db, so it has two endpoints × two rounds.
	if len(tp.Runs) != 4 || len(tp.Summary) != 2 {
		t.Fatalf("%d runs and %d summaries, want 4 and 2: %+v", len(tp.Runs), len(tp.Summary), tp.Runs)
	}
	for _, r := range tp.Runs {
		if r.Requests == 0 || r.RPS <= 0 || r.CPUCores <= 0 || r.PeakRSS < 1<<20 {
			t.Errorf("run %+v: want requests, rps, server CPU and peak RSS measured", r)
		}
	}

	dir := filepath.Join(t.TempDir(), "out")
	in := report.Results{Env: environment("test"), Throughput: tp}
	if err := report.Write(dir, in); err != nil {
		t.Fatal(err)
	}
	back, err := report.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Throughput.Runs) != 4 || back.Throughput.Summary[0].RPS != tp.Summary[0].RPS {
		t.Errorf("results.json does not round-trip: %+v", back.Throughput.Summary)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sum := range tp.Summary {
		row := "| gnet | " + report.Rate(sum.RPS) + " | 1.00× | " + report.Latency(sum.P50US)
		if !strings.Contains(string(md), "### "+sum.Endpoint+"\n") || !strings.Contains(string(md), row) {
			t.Errorf("report.md lacks the %s table or row %q:\n%s", sum.Endpoint, row, md)
		}
	}
	for _, name := range []string{"throughput.svg", "latency.svg"} {
		checkSVG(t, filepath.Join(dir, name), []string{"/plaintext", "/json", "gnet"})
	}
}

// TestThroughputReportsFailedAnswers serves 500s from this test process
// (its own /proc entry stands in for a server's) and expects every run to be
// listed as a problem, which makes the runner exit non-zero.
func TestThroughputReportsFailedAnswers(t *testing.T) {
	needWrk(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: "fasthttp", addr: strings.TrimPrefix(broken.URL, "http://"), cmd: &exec.Cmd{Process: self}}
	o := options{endpoints: []string{"json", "db"}, duration: time.Second, connections: 2, threads: 1, rounds: 1, pipeline: 1, queries: 1}
	tp, problems := throughput(context.Background(), o, []*server{s}, "", "bench -test")
	if len(problems) != 2 || len(tp.Runs) != 2 {
		t.Fatalf("problems %q, runs %d: want one problem per run", problems, len(tp.Runs))
	}
	for i, p := range problems {
		if !strings.Contains(p, "errors") || tp.Runs[i].Errors.Status != tp.Runs[i].Requests {
			t.Errorf("problem %q for run %+v", p, tp.Runs[i])
		}
	}
}

// TestCapacitySearchMeetsItsOwnRule runs a short real search and checks
// that every step was judged by the objective and the reported rate is the
// best passing step.
func TestCapacitySearchMeetsItsOwnRule(t *testing.T) {
	s := startGnet(t)
	o := options{endpoint: "json", p99: 100 * time.Millisecond, step: time.Second, startRate: 250, maxRate: 1000, driver: "postgres"}
	c := capacitySearch(context.Background(), o, []*server{s}, "bench -capacity -test")
	if len(c.Servers) != 1 || len(c.Servers[0].Steps) == 0 {
		t.Fatalf("capacity %+v: want one server with steps", c)
	}
	cs := c.Servers[0]
	best := 0
	for _, st := range cs.Steps {
		if st.Requests == 0 {
			t.Errorf("step %+v sent nothing", st)
		}
		meets := st.Errors == 0 && st.P99US <= c.TargetP99US && st.Achieved >= 0.95*float64(st.Rate)
		if st.OK != meets {
			t.Errorf("step %+v judged ok=%v against p99 %v", st, st.OK, c.TargetP99US)
		}
		if st.OK {
			best = max(best, st.Rate)
		}
	}
	if cs.MaxRate != float64(best) || cs.Limit == "" {
		t.Errorf("max rate %v (limit %q), best passing step %d", cs.MaxRate, cs.Limit, best)
	}

	dir := t.TempDir()
	if err := report.Write(dir, report.Results{Env: environment("test"), Capacity: c}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md")) // checked through its content below
	if !strings.Contains(string(md), "| gnet | "+report.Rate(cs.MaxRate)+" |") {
		t.Errorf("report.md lacks the capacity row:\n%s", md)
	}
	checkSVG(t, filepath.Join(dir, "capacity.svg"), []string{"/json", "gnet"})
}

// TestLatencyAndCurvesFromRealRuns runs the latency part and the
// connections and idle-memory curves against the gnet peer, briefly, and
// checks what they measured and what the report says.
func TestLatencyAndCurvesFromRealRuns(t *testing.T) {
	needWrk(t)
	ctx := context.Background()
	l := gnetLaunch(t)
	s := startGnetWith(t, l)
	loadCPUs := ""
	if runtime.NumCPU() >= 2 {
		loadCPUs = "1"
	}
	o := options{driver: "sqlite", connections: 8, threads: 1, queries: 1,
		latencyServers: []string{"gnet"}, latencyEndpoints: []string{"json"}, reference: "gnet",
		latencyStep: time.Second, latencyProbe: time.Second, latencyRates: []int{200},
		curveServers: []string{"gnet"}, curveEndpoint: "json", curveDuration: time.Second,
		curveConnections: []int{4, 16}, curveQueries: []int{1}, curveSizes: []int{1}, curveIdle: []int{200, 50}, fileLimit: 20000}

	lat, problems := latencyAtRate(ctx, o, []*server{s}, report.Throughput{}, loadCPUs, "bench -test")
	if len(problems) > 0 {
		t.Fatalf("latency problems: %q", problems)
	}
	if len(lat.Capacities) != 1 || lat.Capacities[0].RPS <= 0 || !strings.Contains(lat.Capacities[0].Source, "probe") {
		t.Fatalf("capacities %+v: want gnet's, from a probe", lat.Capacities)
	}
	// gnet is its own reference, so it runs at its own three shares and
	// the fixed rate.
	if len(lat.Points) != len(latencyShares)+1 || lat.Points[3].Basis != report.FixedRate || lat.Points[3].Rate != 200 {
		t.Fatalf("%d rate points, want %d, the last at the fixed 200/s: %+v", len(lat.Points), len(latencyShares)+1, lat.Points)
	}
	for i, p := range lat.Points[:3] {
		want := int(latencyShares[i]*lat.Capacities[0].RPS + 0.5)
		if p.Rate != want || p.Requests == 0 || p.P99US <= 0 || p.P999US < p.P99US || p.MaxUS < p.P999US {
			t.Errorf("point %+v: want rate %d, requests, and p99 <= p99.9 <= max", p, want)
		}
	}

	c, problems := curves(ctx, o, l, []*server{s}, loadCPUs, "bench -test")
	if len(problems) > 0 {
		t.Fatalf("curve problems: %q", problems)
	}
	var conns, idle []report.CurvePoint
	for _, p := range c.Points {
		switch p.Curve {
		case report.CurveConnections:
			conns = append(conns, p)
		case report.CurveIdle:
			idle = append(idle, p)
		default:
			t.Errorf("point %+v: gnet serves neither /queries nor the API, and sqlite has no size curve", p)
		}
	}
	if len(conns) != 2 || conns[0].X != 4 || conns[1].X != 16 || conns[0].RPS <= 0 || conns[1].RPS <= 0 {
		t.Errorf("connections curve %+v: want req/s at 4 and 16 connections", conns)
	}
	if len(idle) != 3 || idle[0].X != 0 || idle[1].X != 50 || idle[2].X != 200 || idle[0].RSS < 1<<20 || idle[2].RSS <= idle[0].RSS {
		t.Errorf("idle curve %+v: want RSS at 0, 50 and 200 connections, growing", idle)
	}

	dir := t.TempDir()
	if err := report.Write(dir, report.Results{Env: environment("test"), Latency: lat, Curves: c}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md")) // checked through its content below
	for _, want := range []string{"## Latency at a given rate", "## How cost grows", "The size curve runs on PostgreSQL only",
		"| gnet | " + report.Rate(float64(lat.Points[0].Rate)) + " | 25 % gnet |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	checkSVG(t, filepath.Join(dir, "latency-rate-json.svg"), []string{"/json", "gnet"})
	checkSVG(t, filepath.Join(dir, "curve-connections-rps.svg"), []string{"connections", "gnet"})
	checkSVG(t, filepath.Join(dir, "curve-idle.svg"), []string{"idle keep-alive connections", "gnet"})
}

func TestCompressionPartStartsHotpathAlone(t *testing.T) {
	o := options{parts: []string{"compression"}, servers: []string{"fasthttp", "gin"}, curveServers: []string{"gin-full"}}
	if got := o.started(); !slices.Equal(got, []string{"hotpath"}) {
		t.Errorf("-parts compression starts %q, want hotpath alone", got)
	}
	o.parts = []string{"throughput", "compression"}
	if got := o.started(); !slices.Equal(got, []string{"fasthttp", "gin", "hotpath"}) {
		t.Errorf("-parts throughput,compression starts %q, want the servers, then hotpath", got)
	}
}

// codingServer stands in for hotpath: it answers a body of a size set by the
// Accept-Encoding it gets, marked with that coding, unless compress is off.
// Its /proc entry is this test process's.
func codingServer(t *testing.T, compress bool) *server {
	t.Helper()
	sizes := map[string]int{"identity": 8000, "zstd": 1000, "br": 900, "gzip": 1200}
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		coding := r.Header.Get("Accept-Encoding")
		n, ok := sizes[coding]
		if !ok || !compress {
			coding, n = "identity", sizes["identity"]
		}
		if coding != "identity" {
			w.Header().Set("Content-Encoding", coding)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(n)) // not chunked: the bytes are the body and headers alone
		io.WriteString(w, strings.Repeat("x", n))
	}))
	t.Cleanup(h.Close)
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return &server{name: "hotpath", addr: strings.TrimPrefix(h.URL, "http://"), cmd: &exec.Cmd{Process: self}}
}

// TestCompressionMeasuresEachCodingInTurn runs the part against a server
// whose answers shrink by coding and checks the order of the runs, the
// bytes and CPU measured, and the report's table.
func TestCompressionMeasuresEachCodingInTurn(t *testing.T) {
	needWrk(t)
	s := codingServer(t, true)
	o := options{driver: "sqlite", duration: time.Second, connections: 4, threads: 1, rounds: 2}
	c, problems := compression(context.Background(), o, s, "", "bench -test")
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	// SQLite: the API page needs fortunes added to a shared database.
	if !slices.Equal(c.Pages, []string{"/fortunes"}) || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "PostgreSQL only") {
		t.Fatalf("pages %q, notes %q: want /fortunes alone and a note on the API page", c.Pages, c.Notes)
	}
	var order []string
	for _, r := range c.Runs {
		order = append(order, strconv.Itoa(r.Round)+" "+r.Coding)
	}
	want := []string{"1 identity", "1 zstd", "1 br", "1 gzip", "2 zstd", "2 br", "2 gzip", "2 identity"}
	if !slices.Equal(order, want) {
		t.Fatalf("runs in order %q, want %q", order, want)
	}
	body := map[string]float64{"identity": 8000, "zstd": 1000, "br": 900, "gzip": 1200}
	for _, r := range c.Runs {
		// The status line and headers come on top of the body.
		if r.Requests == 0 || r.Errors != 0 || r.ResponseBytes <= body[r.Coding] || r.ResponseBytes > body[r.Coding]+300 ||
			r.CPUPerRequestUS <= 0 {
			t.Errorf("run %+v: want answers of %v body bytes plus headers, no errors, server CPU measured", r, body[r.Coding])
		}
	}
	if len(c.Summary) != 4 {
		t.Fatalf("summary %+v: want a row per coding", c.Summary)
	}

	dir := t.TempDir()
	if err := report.Write(dir, report.Results{Env: environment("test"), Compression: c}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md")) // checked through its content below
	id, zstd := c.Summary[0], c.Summary[1]
	for _, want := range []string{"## Compression: what it buys and costs", "Command: `bench -test`",
		"| /fortunes | identity | " + report.Rate(id.RPS) + " | 1.00× | " + report.Rate(id.ResponseBytes) + " B |",
		"| /fortunes | zstd | " + report.Rate(zstd.RPS) + " | " + fmt.Sprintf("%.2f× [", zstd.RPS/id.RPS)} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

// TestCompressionRefusesUncompressedAnswers expects a server that ignores
// Accept-Encoding (server.compress off) to make the part fail, and its
// answers not to be measured under the codings' names.
func TestCompressionRefusesUncompressedAnswers(t *testing.T) {
	needWrk(t)
	s := codingServer(t, false)
	o := options{driver: "sqlite", duration: time.Second, connections: 2, threads: 1, rounds: 1}
	c, problems := compression(context.Background(), o, s, "", "bench -test")
	if len(problems) != 3 {
		t.Fatalf("problems %q: want one per coding other than identity", problems)
	}
	for _, p := range problems {
		if !strings.Contains(p, `got Content-Encoding ""`) || !strings.Contains(p, "server.compress") {
			t.Errorf("problem %q does not say what came back and which key to check", p)
		}
	}
	if len(c.Runs) != 1 || c.Runs[0].Coding != "identity" {
		t.Errorf("runs %+v: want identity alone", c.Runs)
	}
}

func TestServersCloseIdleDatabaseConnections(t *testing.T) {
	dsn := shortIdlePool("postgres://postgres@127.0.0.1:5432/hotpath_bench?sslmode=disable")
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnIdleTime != poolIdle || cfg.HealthCheckPeriod != time.Second || cfg.ConnConfig.Database != "hotpath_bench" {
		t.Errorf("%s: idle time %s, health check %s, database %q", dsn, cfg.MaxConnIdleTime, cfg.HealthCheckPeriod, cfg.ConnConfig.Database)
	}
	if got := shortIdlePool("/tmp/bench"); got != "/tmp/bench" {
		t.Errorf("a SQLite directory became %q", got)
	}
}

func TestCPUBusyCountsWork(t *testing.T) {
	if _, err := cpuBusy("999999"); err == nil {
		t.Error("cpuBusy of a CPU that does not exist succeeded")
	}
	before, err := cpuBusy("")
	if err != nil {
		t.Fatal(err)
	}
	// Spin for 200 ms: the machine's busy time must grow by at least
	// about that much (USER_HZ ticks are 10 ms).
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
	}
	after, err := cpuBusy("")
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 150*time.Millisecond {
		t.Errorf("busy time grew by %s over 200ms of spinning", d)
	}
}

// checkSVG parses the file as XML and looks for the given texts.
func checkSVG(t *testing.T, path string, texts []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(raw)))
	var shapes int
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "rect" || tok.Name.Local == "polyline" || tok.Name.Local == "circle" {
				shapes++
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	for _, want := range texts {
		if !strings.Contains(text.String(), want) {
			t.Errorf("%s has no text %q", path, want)
		}
	}
	if shapes < 3 {
		t.Errorf("%s draws %d shapes", path, shapes)
	}
}

// needWrk skips without wrk, noting it for make test's summary, except
// under CI where the runner must be checked.
func needWrk(t *testing.T) {
	t.Helper()
	if _, err := wrk.Path(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		testskip.Skip(t, "wrk tests", err.Error())
	}
}

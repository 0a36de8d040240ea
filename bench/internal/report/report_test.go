package report

import (
	"strings"
	"testing"

	"github.com/hotpath/hotpath/bench/wrk"
)

func run(server string, round int, rps, p99 float64, statusErrors int64, rss int64) Run {
	return Run{Server: server, Endpoint: "json", Round: round, RPS: rps, Requests: int64(rps),
		LatencyUS: wrk.Latency{P50: p99 / 10, P99: p99}, Errors: wrk.Errors{Status: statusErrors}, PeakRSS: rss}
}

func TestSummarizeTakesMediansAndSumsErrors(t *testing.T) {
	tp := Throughput{Servers: []string{"hotpath", "gin"}, Endpoints: []string{"json"}, Runs: []Run{
		run("hotpath", 1, 300, 900, 0, 10),
		run("gin", 1, 100, 5000, 1, 30),
		run("hotpath", 2, 100, 100, 2, 20),
		run("gin", 2, 120, 3000, 0, 20),
		run("hotpath", 3, 200, 500, 0, 15),
	}}
	tp.Summarize()
	if len(tp.Summary) != 2 {
		t.Fatalf("summary %+v, want hotpath and gin", tp.Summary)
	}
	hp, gin := tp.Summary[0], tp.Summary[1]
	check := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("hotpath rps (median of 3)", hp.RPS, 200)
	check("hotpath p99", hp.P99US, 500)
	check("hotpath errors (sum)", float64(hp.Errors), 2)
	check("hotpath peak RSS (max)", float64(hp.PeakRSS), 20)
	check("gin rps (median of 2)", gin.RPS, 110)
	check("gin p99", gin.P99US, 4000)
	check("gin rounds", float64(gin.Rounds), 2)

	md := string(Markdown(Results{Throughput: tp}))
	for _, want := range []string{"| hotpath | 200 | 1.00× |", "| gin | 110 | 0.55× |", "| server | req/s | vs hotpath |",
		// 200/110 of the medians; rounds 1 and 2 paired 300/100 and 100/120.
		"| endpoint | gin |", "| json | 1.82× [0.83–3.00] |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownWarnsWhenServersWereStarved(t *testing.T) {
	tp := Throughput{Servers: []string{"hotpath"}, Endpoints: []string{"json"}}
	quiet := run("hotpath", 1, 100, 100, 0, 1)
	quiet.OtherCPU = 0.02
	tp.Runs = []Run{quiet}
	tp.Summarize()
	if md := string(Markdown(Results{Throughput: tp})); strings.Contains(md, "Warning") {
		t.Errorf("warned about a quiet run:\n%s", md)
	}
	busy := quiet
	busy.OtherCPU = 0.4
	tp.Runs = []Run{busy}
	tp.Summarize()
	if md := string(Markdown(Results{Throughput: tp})); !strings.Contains(md, "**Warning:** other processes used up to 0.40") {
		t.Errorf("no warning for a server that lost 40 %% of its CPU:\n%s", md)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Rate(1234567.4), "1,234,567"},
		{Rate(999.6), "1,000"},
		{Rate(12), "12"},
		{Latency(850), "850 µs"},
		{Latency(12345), "12.35 ms"},
		{Bytes(3 << 20), "3.0 MiB"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestRatioTablesPutFullPeersBeforeTheCeiling(t *testing.T) {
	tp := Throughput{Servers: []string{"hotpath", "fasthttp", "gin-full", "gin-full-discard"}, Endpoints: []string{"json"}}
	for i, srv := range tp.Servers {
		tp.Runs = append(tp.Runs, run(srv, 1, float64(400-100*i), 100, 0, 1))
	}
	tp.Summarize()
	md := string(Markdown(Results{Throughput: tp}))
	full := strings.Index(md, "### hotpath ÷ each full-featured peer")
	bare := strings.Index(md, "### hotpath ÷ each bare peer")
	if full < 0 || bare < full {
		t.Fatalf("want the full-featured table, then the bare one:\n%s", md)
	}
	for _, want := range []string{"| endpoint | gin-full | gin-full-discard |\n|---|--:|--:|\n| json | 2.00× | 4.00× |",
		"| endpoint | fasthttp |\n|---|--:|\n| json | 1.33× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}

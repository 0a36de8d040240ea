package report

import (
	"strings"
	"testing"
)

func TestLatencyAtRateReportAndGoal(t *testing.T) {
	l := LatencyAtRate{Reference: "fiber-full", Step: "10s", Driver: "postgres",
		Servers: []string{"hotpath", "fiber-full", "gin-full"}, Endpoints: []string{"json"},
		Capacities: []MeasuredCapacity{{Server: "hotpath", Endpoint: "json", RPS: 100000, Source: "probe"}}}
	point := func(srv, basis string, share float64, rate int, p99 float64, limited bool) RatePoint {
		return RatePoint{Server: srv, Endpoint: "json", Basis: basis, Share: share, GeneratorLimited: limited,
			CapacityStep: CapacityStep{Rate: rate, Sent: float64(rate), Achieved: float64(rate),
				P50US: p99 / 4, P99US: p99, P999US: p99 * 2, MaxUS: p99 * 3}}
	}
	l.Points = []RatePoint{
		point("hotpath", "hotpath", 0.8, 80000, 900, true),
		point("hotpath", "fiber-full", 0.8, 40000, 300, false),
		point("fiber-full", "fiber-full", 0.8, 40000, 2000, false),
		point("gin-full", "fiber-full", 0.8, 40000, 5000, false),
		point("gin-full", FixedRate, 0, 1000, 700, false),
	}
	md := string(Markdown(Results{Latency: &l}))
	for _, want := range []string{
		"![p99 against offered rate](latency-rate-json.svg)",
		"| hotpath | 40,000 | 80 % fiber-full | 40,000 | 40,000 | 75 µs | 0 µs | 300 µs | 600 µs | 900 µs | 0 | 0.00 |  |",
		"| hotpath | 80,000 | 80 % hotpath |", "| generator |", "| gin-full | 1,000 | fixed | 1,000 |",
		"| json: p99 at 80 % of fiber-full's capacity, hotpath's lower than every full-featured peer's | hotpath 300 µs, fiber-full 2.00 ms, gin-full 5.00 ms | yes |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	svg := string(LatencyRateSVG(l, "json"))
	if strings.Count(svg, "<polyline") != 3 || !strings.Contains(svg, `fill="white"`) {
		t.Errorf("latency-rate SVG: want a line per server and a ring for the generator-limited run:\n%s", svg)
	}

	l.Points[1].P99US = 2500 // slower than fiber-full now
	if md := string(Markdown(Results{Latency: &l})); !strings.Contains(md, "gin-full 5.00 ms | no |") {
		t.Errorf("goal should be missed when hotpath's p99 is higher than one peer's:\n%s", md)
	}
}

func TestCurvesReport(t *testing.T) {
	c := Curves{Servers: []string{"hotpath", "gin-full"}, Endpoint: "json", Duration: "5s", Connections: 64, Driver: "postgres",
		Points: []CurvePoint{
			{Curve: CurveConnections, Server: "hotpath", X: 64, RPS: 90000, P99US: 800},
			{Curve: CurveConnections, Server: "hotpath", X: 16, RPS: 80000, P99US: 300},
			{Curve: CurveConnections, Server: "gin-full", X: 16, RPS: 30000, P99US: 900, Errors: 2},
			{Curve: CurveIdle, Server: "gin-full", X: 1000, RSS: 40 << 20},
		}}
	md := string(Markdown(Results{Curves: &c}))
	for _, want := range []string{
		"| server | 16 | 64 |\n|---|--:|--:|\n| hotpath | 80,000 | 90,000 |\n| gin-full | 30,000 (2 errors) | – |",
		"| hotpath | 300 µs | 800 µs |", "| gin-full | 40.0 MiB |", "![", "(curve-idle.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	files := CurveSVGs(c)
	if len(files) != 3 || files["curve-size.svg"] != nil {
		t.Errorf("want the two connections charts and the idle chart, got %d files", len(files))
	}
	if svg := string(files["curve-connections-rps.svg"]); strings.Count(svg, "<polyline") != 2 || !strings.Contains(svg, "gin-full") {
		t.Errorf("connections chart lacks a line per server:\n%s", svg)
	}
}

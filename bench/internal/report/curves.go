package report

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
)

// LatencyAtRate is the open-loop part: each server's latency at fixed
// arrival rates, set as shares of its own capacity and of a reference
// server's, so all servers also meet the same rates.
type LatencyAtRate struct {
	Command string `json:"command"`
	// Env is the environment of this part; see Throughput.Env.
	Env       Env               `json:"environment"`
	Driver    string            `json:"driver"`
	Step      string            `json:"step"`
	Reference string            `json:"reference"`
	Servers   []string          `json:"servers"`
	Endpoints []string          `json:"endpoints"`
	Paths     map[string]string `json:"paths"`
	// Capacities are the closed-loop req/s the shares are taken of.
	Capacities []MeasuredCapacity `json:"capacities"`
	Points     []RatePoint        `json:"points"`
}

// MeasuredCapacity is one server's measured capacity on one endpoint.
type MeasuredCapacity struct {
	Server   string  `json:"server"`
	Endpoint string  `json:"endpoint"`
	RPS      float64 `json:"rps"`
	// Source says where the figure comes from: this run's wrk throughput
	// median, or a wrk probe made for this part.
	Source string `json:"source"`
}

// RatePoint is one constant-rate run of one server on one endpoint.
type RatePoint struct {
	Server   string `json:"server"`
	Endpoint string `json:"endpoint"`
	// Basis is the server whose capacity the rate is a share of, or
	// FixedRate.
	Basis string  `json:"basis"`
	Share float64 `json:"share"`
	// CapacityStep is the run: rate, sent, throughput, latencies, errors
	// and CPU (its OK is not used here).
	CapacityStep
	// GeneratorLimited is set when the generator sent under 95 % of the
	// rate: the point then says nothing about the server at that rate.
	GeneratorLimited bool `json:"generator_limited"`
}

// FixedRate is the Basis of a rate given in requests per second rather
// than as a share of a capacity.
const FixedRate = "fixed"

// Basis says what a point's rate is: "25 % fiber-full", or "fixed".
func Basis(p RatePoint) string {
	if p.Basis == FixedRate {
		return FixedRate
	}
	return fmt.Sprintf("%.0f %% %s", 100*p.Share, p.Basis)
}

// Curves is the cost-growth part: how throughput, latency and memory move
// as one dimension of the load grows.
type Curves struct {
	Command string `json:"command"`
	// Env is the environment of this part; see Throughput.Env.
	Env      Env      `json:"environment"`
	Driver   string   `json:"driver"`
	Duration string   `json:"duration"`
	Servers  []string `json:"servers"`
	// Endpoint is the one the connections curve loads.
	Endpoint    string       `json:"endpoint"`
	Connections int          `json:"connections"`
	Points      []CurvePoint `json:"points"`
	// Notes say what a curve could not measure and why.
	Notes []string `json:"notes,omitempty"`
}

// The curves, by the name their points carry.
const (
	CurveConnections = "connections"
	CurveSize        = "size"
	CurveQueries     = "queries"
	CurveIdle        = "idle"
)

// CurvePoint is one measurement of one server on one curve at X
// (connections, page limit, queries per request or idle connections).
type CurvePoint struct {
	Curve    string  `json:"curve"`
	Server   string  `json:"server"`
	X        float64 `json:"x"`
	RPS      float64 `json:"rps,omitempty"`
	P99US    float64 `json:"p99_us,omitempty"`
	Errors   int64   `json:"errors"`
	CPUCores float64 `json:"cpu_cores,omitempty"`
	// ResponseBytes is the mean size of an answer, headers included.
	ResponseBytes float64 `json:"response_bytes,omitempty"`
	// RSS is the server's resident set after the point, in bytes.
	RSS int64 `json:"rss_bytes,omitempty"`
}

// points returns the curve's points of one server, by X.
func (c Curves) points(curve, server string) []CurvePoint {
	var out []CurvePoint
	for _, p := range c.Points {
		if p.Curve == curve && p.Server == server {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b CurvePoint) int { return int(a.X - b.X) })
	return out
}

// xs returns the distinct X values of a curve, ascending.
func (c Curves) xs(curve string) []float64 {
	var xs []float64
	for _, p := range c.Points {
		if p.Curve == curve && !slices.Contains(xs, p.X) {
			xs = append(xs, p.X)
		}
	}
	slices.Sort(xs)
	return xs
}

// series is one server's line on a chart.
type series struct {
	name string
	pts  [][2]float64
	// hollow marks points drawn as rings (generator-limited runs).
	hollow []bool
}

// axis is one scale of a chart.
type axis struct {
	label string
	log   bool
	fmt   func(float64) string
}

// LineChart draws each series against a shared x and y axis, logarithmic
// where asked, one colour per server in the order of servers.
func lineChart(title string, servers []string, x, y axis, all []series) []byte {
	const width, height, left, top, right, bottom = 720, 420, 80, 80, 30, 50
	g := newSVG(width, height, title)
	legend(g, servers, 10, 40)
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range all {
		for _, p := range s.pts {
			xlo, xhi = math.Min(xlo, p[0]), math.Max(xhi, p[0])
			ylo, yhi = math.Min(ylo, p[1]), math.Max(yhi, p[1])
		}
	}
	if math.IsInf(xlo, 1) {
		return g.end()
	}
	if !y.log {
		ylo = 0
	}
	scale := func(a axis, lo, hi float64) (float64, float64, func(float64) float64) {
		if a.log {
			lo, hi = math.Max(lo, 1e-9), math.Max(hi, lo*10)
			lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
			return lo, hi, func(v float64) float64 {
				return (math.Log10(math.Max(v, lo)) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
			}
		}
		if hi <= lo {
			hi = lo + 1
		}
		hi *= 1.05
		return lo, hi, func(v float64) float64 { return (v - lo) / (hi - lo) }
	}
	xlo, xhi, fx := scale(x, xlo, xhi)
	ylo, yhi, fy := scale(y, ylo, yhi)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	xOf := func(v float64) float64 { return left + pw*fx(v) }
	yOf := func(v float64) float64 { return top + ph - ph*fy(v) }
	g.line(left, top+ph, left+pw, top+ph, "#000", "")
	g.line(left, top, left, top+ph, "#000", "")
	for _, t := range ticks(y, ylo, yhi) {
		g.line(left, yOf(t), left+pw, yOf(t), "#ddd", "")
		g.text(left-4, yOf(t)+4, "end", "normal", y.fmt(t))
	}
	for _, t := range ticks(x, xlo, xhi) {
		g.text(xOf(t), top+ph+16, "middle", "normal", x.fmt(t))
	}
	g.text(left+pw/2, height-8, "middle", "normal", x.label)
	g.text(12, top-12, "start", "normal", y.label)
	for _, s := range all {
		col := colour(servers, s.name)
		var pts bytes.Buffer
		for i, p := range s.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(p[0]), yOf(p[1]))
			fill := col
			if i < len(s.hollow) && s.hollow[i] {
				fill = "white"
			}
			fmt.Fprintf(g, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s" stroke="%s"/>`+"\n", xOf(p[0]), yOf(p[1]), fill, col)
		}
		fmt.Fprintf(g, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", bytes.TrimSpace(pts.Bytes()), col)
	}
	return g.end()
}

// ticks are powers of ten on a log axis, quarters on a linear one.
func ticks(a axis, lo, hi float64) []float64 {
	var out []float64
	if a.log {
		for v := lo; v <= hi*1.001; v *= 10 {
			out = append(out, v)
		}
		return out
	}
	for i := 0; i <= 4; i++ {
		out = append(out, lo+(hi-lo)*float64(i)/4)
	}
	return out
}

var (
	rateAxis    = func(label string) axis { return axis{label: label, fmt: Rate} }
	latencyAxis = axis{label: "latency", log: true, fmt: axisLatency}
	countAxis   = func(label string) axis {
		return axis{label: label, log: true, fmt: func(v float64) string { return Rate(v) }}
	}
)

// LatencyRateSVG draws p99 against the offered rate for each server on one
// endpoint; rings are runs the generator could not send at full rate.
func LatencyRateSVG(l LatencyAtRate, endpoint string) []byte {
	var all []series
	for _, srv := range l.Servers {
		s := series{name: srv}
		for _, p := range l.sortedPoints(srv, endpoint) {
			s.pts = append(s.pts, [2]float64{float64(p.Rate), p.P99US})
			s.hollow = append(s.hollow, p.GeneratorLimited)
		}
		if len(s.pts) > 0 {
			all = append(all, s)
		}
	}
	return lineChart(fmt.Sprintf("/%s: p99 latency against offered rate (open loop)", endpoint), l.Servers,
		rateAxis("offered rate (requests/s)"), latencyAxis, all)
}

func (l LatencyAtRate) sortedPoints(server, endpoint string) []RatePoint {
	var out []RatePoint
	for _, p := range l.Points {
		if p.Server == server && p.Endpoint == endpoint {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b RatePoint) int { return a.Rate - b.Rate })
	return out
}

// curveSpec says how to draw and tabulate one curve.
type curveSpec struct {
	curve, file, title, about string
	x                         axis
	y                         axis
	value                     func(CurvePoint) float64
	cell                      func(CurvePoint) string
}

func curveSpecs(c Curves) []curveSpec {
	rps := func(p CurvePoint) float64 { return p.RPS }
	rpsCell := func(p CurvePoint) string { return Rate(p.RPS) + errorsNote(p.Errors) }
	return []curveSpec{
		{CurveConnections, "curve-connections-rps.svg", fmt.Sprintf("/%s: requests per second against connections", c.Endpoint),
			"wrk, closed loop, one request at a time per connection.",
			countAxis("connections"), rateAxis("req/s"), rps, rpsCell},
		{CurveConnections, "curve-connections-p99.svg", fmt.Sprintf("/%s: p99 latency against connections", c.Endpoint),
			"The same runs: wrk's p99 (closed loop, so queueing shows as latency only up to the connection count).",
			countAxis("connections"), latencyAxis, func(p CurvePoint) float64 { return p.P99US },
			func(p CurvePoint) string { return Latency(p.P99US) }},
		{CurveSize, "curve-size.svg", "/api/v1/fortunes?limit=N: requests per second against page size",
			"wrk, closed loop; the cell gives req/s and, in brackets, the mean answer size.",
			countAxis("fortunes per page (limit)"), rateAxis("req/s"), rps,
			func(p CurvePoint) string {
				return fmt.Sprintf("%s (%s B)", Rate(p.RPS), Rate(p.ResponseBytes)) + errorsNote(p.Errors)
			}},
		{CurveQueries, "curve-queries.svg", "/queries?queries=N: requests per second against queries per request",
			"wrk, closed loop; N World rows read one query each.",
			countAxis("queries per request"), countAxis("req/s"), rps, rpsCell},
		{CurveIdle, "curve-idle.svg", "Resident memory against idle keep-alive connections",
			"A fresh process of each server; each connection made one request and then stayed open and idle; " +
				"VmRSS of the server afterwards (0: before any).",
			countAxis("idle keep-alive connections"), axis{label: "RSS", fmt: func(v float64) string { return Bytes(int64(v)) }},
			func(p CurvePoint) float64 { return float64(p.RSS) }, func(p CurvePoint) string { return Bytes(p.RSS) }},
	}
}

func errorsNote(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d errors)", n)
}

// CurveSVGs renders every curve that has points, by file name.
func CurveSVGs(c Curves) map[string][]byte {
	out := map[string][]byte{}
	for _, spec := range curveSpecs(c) {
		var all []series
		for _, srv := range c.Servers {
			s := series{name: srv}
			for _, p := range c.points(spec.curve, srv) {
				if spec.x.log && p.X <= 0 {
					continue // in the table only: a log axis has no 0
				}
				s.pts = append(s.pts, [2]float64{p.X, spec.value(p)})
			}
			if len(s.pts) > 0 {
				all = append(all, s)
			}
		}
		if len(all) > 0 {
			out[spec.file] = lineChart(spec.title, c.Servers, spec.x, spec.y, all)
		}
	}
	return out
}

func writeLatencyAtRate(b *bytes.Buffer, l LatencyAtRate) {
	fmt.Fprintf(b, "\n## Latency at a given rate (open loop, vegeta)\n\n")
	fmt.Fprintf(b, "Command: `%s`\n\n%s", l.Command, measured(l.Env))
	fmt.Fprintf(b, "Requests arrive at a constant rate whatever the server does (vegeta, at most 512 connections; a request "+
		"waiting for a connection counts the wait), so the percentiles are free of coordinated omission. Each server "+
		"runs at 25, 50 and 80 %% of its own capacity, at the same shares of %s's, and at the fixed rates, %s each, on the %s database. "+
		"Capacity is the closed-loop req/s below. A rate the generator could not send (under 95 %%) is marked "+
		"\"generator\": that row measures the generator, not the server.\n\n", l.Reference, l.Step, l.Driver)
	fmt.Fprintf(b, "| server | endpoint | capacity (req/s) | measured by |\n|---|---|--:|---|\n")
	for _, c := range l.Capacities {
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", c.Server, c.Endpoint, Rate(c.RPS), c.Source)
	}
	for _, ep := range l.Endpoints {
		fmt.Fprintf(b, "\n### %s at a given rate\n\n", ep)
		if p := l.Paths[ep]; p != "" {
			fmt.Fprintf(b, "`GET %s`\n\n", p)
		}
		fmt.Fprintf(b, "![p99 against offered rate](latency-rate-%s.svg)\n\n", ep)
		fmt.Fprintf(b, "| server | rate | set by | sent | throughput | p50 | p90 | p99 | p99.9 | max | errors | server CPU | note |\n")
		fmt.Fprintf(b, "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, srv := range l.Servers {
			for _, p := range l.sortedPoints(srv, ep) {
				note := ""
				if p.GeneratorLimited {
					note = "generator"
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.2f | %s |\n",
					p.Server, Rate(float64(p.Rate)), Basis(p), Rate(p.Sent), Rate(p.Achieved),
					Latency(p.P50US), Latency(p.P90US), Latency(p.P99US), Latency(p.P999US), Latency(p.MaxUS),
					p.Errors, p.ServerCPU, note)
			}
		}
	}
}

func writeCurves(b *bytes.Buffer, c Curves) {
	fmt.Fprintf(b, "\n## How cost grows\n\n")
	fmt.Fprintf(b, "Command: `%s`\n\n%s", c.Command, measured(c.Env))
	fmt.Fprintf(b, "Each point is one %s run of one server on its pinned core (GOMAXPROCS=1), %s database; "+
		"wrk with %d connections unless the curve varies them.\n", c.Duration, c.Driver, c.Connections)
	for _, n := range c.Notes {
		fmt.Fprintf(b, "\n**Note:** %s\n", n)
	}
	files := CurveSVGs(c)
	for _, spec := range curveSpecs(c) {
		if files[spec.file] == nil {
			continue
		}
		xs := c.xs(spec.curve)
		fmt.Fprintf(b, "\n### %s\n\n%s\n\n![%s](%s)\n\n", spec.title, spec.about, spec.title, spec.file)
		head := make([]string, len(xs))
		for i, x := range xs {
			head[i] = Rate(x)
		}
		fmt.Fprintf(b, "| server | %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("--:|", len(xs)))
		for _, srv := range c.Servers {
			pts := c.points(spec.curve, srv)
			if len(pts) == 0 {
				continue
			}
			cells := make([]string, len(xs))
			for i, x := range xs {
				cells[i] = "–"
				for _, p := range pts {
					if p.X == x {
						cells[i] = spec.cell(p)
					}
				}
			}
			fmt.Fprintf(b, "| %s | %s |\n", srv, strings.Join(cells, " | "))
		}
	}
}

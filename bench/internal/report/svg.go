package report

import (
	"bytes"
	"cmp"
	"fmt"
	"html"
	"math"
	"slices"
)

// palette colours servers in a fixed order so charts agree with each other.
var palette = []string{"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"}

// svg is a tiny writer for hand-made charts.
type svg struct{ bytes.Buffer }

func newSVG(w, h int, title string) *svg {
	s := &svg{}
	fmt.Fprintf(s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	s.text(10, 20, "start", "bold", title)
	return s
}

func (s *svg) text(x, y float64, anchor, weight, t string) {
	fmt.Fprintf(s, `<text x="%.1f" y="%.1f" text-anchor="%s" font-weight="%s">%s</text>`+"\n", x, y, anchor, weight, html.EscapeString(t))
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke, dash string) {
	fmt.Fprintf(s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="%s"/>`+"\n", x1, y1, x2, y2, stroke, dash)
}

func (s *svg) end() []byte {
	s.WriteString("</svg>\n")
	return s.Bytes()
}

func colour(servers []string, name string) string {
	i := slices.Index(servers, name)
	if i < 0 {
		i = len(palette) - 1
	}
	return palette[i%len(palette)]
}

// ThroughputSVG draws one block of horizontal bars per endpoint, each block
// scaled to its own fastest server, since endpoints differ by orders of
// magnitude.
func ThroughputSVG(t Throughput) []byte {
	const width, left, barH, gap = 720, 110, 18, 4
	var blocks [][]Summary
	height := 40
	for _, ep := range t.Endpoints {
		if rows := summariesFor(t.Summary, ep); len(rows) > 0 {
			blocks = append(blocks, rows)
			height += 24 + len(rows)*(barH+gap) + 10
		}
	}
	s := newSVG(width, height, "Requests per second (median over rounds; each endpoint on its own scale)")
	y := 40.0
	for _, rows := range blocks {
		s.text(10, y+14, "start", "bold", "/"+rows[0].Endpoint)
		y += 24
		top := slices.MaxFunc(rows, func(a, b Summary) int { return cmp.Compare(a.RPS, b.RPS) }).RPS
		for _, r := range rows {
			w := 0.0
			if top > 0 {
				w = (width - left - 130) * r.RPS / top
			}
			s.text(left-6, y+13, "end", "normal", r.Server)
			fmt.Fprintf(s, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", left, y, w, barH, colour(t.Servers, r.Server))
			label := Rate(r.RPS)
			if r.Errors > 0 {
				label += fmt.Sprintf(" (%d errors)", r.Errors)
			}
			s.text(float64(left)+w+6, y+13, "start", "normal", label)
			y += barH + gap
		}
		y += 10
	}
	return s.end()
}

// LatencySVG draws, per endpoint, each server's latency at p50, p90, p99 and
// p99.9 on a logarithmic axis.
func LatencySVG(t Throughput) []byte {
	const cols, panelW, panelH, top = 2, 360, 220, 60
	var eps []string
	for _, ep := range t.Endpoints {
		if len(summariesFor(t.Summary, ep)) > 0 {
			eps = append(eps, ep)
		}
	}
	rowsN := (len(eps) + cols - 1) / cols
	s := newSVG(cols*panelW, top+rowsN*panelH, "Latency percentiles (wrk, median over rounds; log scale)")
	legend(s, t.Servers, 10, 40)
	labels := []string{"p50", "p90", "p99", "p99.9"}
	for i, ep := range eps {
		rows := summariesFor(t.Summary, ep)
		x0 := float64(i%cols*panelW) + 64
		y0 := float64(top + i/cols*panelH)
		pw, ph := float64(panelW-80), float64(panelH-60)
		lo, hi := math.Inf(1), 0.0
		for _, r := range rows {
			for _, v := range []float64{r.P50US, r.P999US} {
				lo, hi = math.Min(lo, math.Max(v, 1)), math.Max(hi, v)
			}
		}
		lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(math.Max(hi, lo*10))))
		yOf := func(us float64) float64 {
			return y0 + 20 + ph - ph*(math.Log10(math.Max(us, lo))-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
		}
		s.text(x0, y0+12, "start", "bold", "/"+ep)
		for d := lo; d <= hi*1.001; d *= 10 {
			s.line(x0, yOf(d), x0+pw, yOf(d), "#ddd", "")
			s.text(x0-4, yOf(d)+4, "end", "normal", axisLatency(d))
		}
		xOf := func(j int) float64 { return x0 + 20 + float64(j)*(pw-40)/float64(len(labels)-1) }
		for j, l := range labels {
			s.text(xOf(j), y0+20+ph+16, "middle", "normal", l)
		}
		for _, r := range rows {
			c := colour(t.Servers, r.Server)
			var pts bytes.Buffer
			for j, v := range []float64{r.P50US, r.P90US, r.P99US, r.P999US} {
				fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(j), yOf(v))
				fmt.Fprintf(s, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`+"\n", xOf(j), yOf(v), c)
			}
			fmt.Fprintf(s, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", bytes.TrimSpace(pts.Bytes()), c)
		}
	}
	return s.end()
}

// CapacitySVG draws p50 and p99 against the offered rate for each server,
// the objective as a dashed line and failed steps as hollow red rings.
func CapacitySVG(c Capacity) []byte {
	const width, height, left, top, right, bottom = 720, 380, 70, 60, 20, 50
	var servers []string
	maxRate, maxLat := 0.0, c.TargetP99US*1.5
	for _, s := range c.Servers {
		servers = append(servers, s.Server)
		for _, st := range s.Steps {
			maxRate = math.Max(maxRate, float64(st.Rate))
			maxLat = math.Max(maxLat, math.Min(st.P99US, c.TargetP99US*4))
		}
	}
	g := newSVG(width, height, fmt.Sprintf("/%s: latency against offered rate (objective p99 ≤ %s)", c.Endpoint, Latency(c.TargetP99US)))
	legend(g, servers, 10, 40)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	xOf := func(rate float64) float64 { return left + pw*rate/math.Max(maxRate, 1) }
	yOf := func(us float64) float64 { return top + ph - ph*math.Min(us, maxLat)/maxLat }
	g.line(left, top+ph, left+pw, top+ph, "#000", "")
	g.line(left, top, left, top+ph, "#000", "")
	for i := 0; i <= 4; i++ {
		v := maxLat * float64(i) / 4
		g.text(left-4, yOf(v)+4, "end", "normal", Latency(v))
		r := maxRate * float64(i) / 4
		g.text(xOf(r), top+ph+16, "middle", "normal", Rate(r))
	}
	g.text(left+pw/2, height-8, "middle", "normal", "offered rate (requests/s); latencies above the top are clipped")
	g.line(left, yOf(c.TargetP99US), left+pw, yOf(c.TargetP99US), "#000", "6,4")
	for _, s := range c.Servers {
		col := colour(servers, s.Server)
		steps := sortedSteps(s.Steps)
		for k, dash := range []string{"4,3", ""} { // p50 dashed, p99 solid
			var pts bytes.Buffer
			for _, st := range steps {
				v := st.P50US
				if k == 1 {
					v = st.P99US
				}
				fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(float64(st.Rate)), yOf(v))
			}
			fmt.Fprintf(g, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`+"\n", bytes.TrimSpace(pts.Bytes()), col, dash)
		}
		for _, st := range steps {
			if !st.OK {
				fmt.Fprintf(g, `<circle cx="%.1f" cy="%.1f" r="5" fill="none" stroke="#d00" stroke-width="2"/>`+"\n", xOf(float64(st.Rate)), yOf(st.P99US))
			}
		}
	}
	return g.end()
}

// axisLatency labels a power-of-ten tick: "100 µs", "10 ms", "1 s".
func axisLatency(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%g s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%g ms", us/1e3)
	}
	return fmt.Sprintf("%g µs", us)
}

func legend(s *svg, servers []string, x, y float64) {
	for _, name := range servers {
		fmt.Fprintf(s, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", x, y-10, colour(servers, name))
		s.text(x+16, y, "start", "normal", name)
		x += 24 + 8*float64(len(name))
	}
}

func sortedSteps(steps []CapacityStep) []CapacityStep {
	out := slices.Clone(steps)
	slices.SortFunc(out, func(a, b CapacityStep) int { return a.Rate - b.Rate })
	return out
}

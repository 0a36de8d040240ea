package report

import (
	"bytes"
	"fmt"
	"strings"
)

// ratioGoal is a throughput goal: hotpath's req/s at least min times the
// peer's on the endpoint.
type ratioGoal struct {
	endpoint, peer string
	min            float64
}

// ratioGoals are hotpath's throughput goals against the full-featured peers
// and against the bare ceiling.
var ratioGoals = []ratioGoal{
	{"json", "fiber-full", 1.5}, {"plaintext-single", "fiber-full", 1.5},
	{"json", "gin-full", 2.5}, {"plaintext-single", "gin-full", 2.5},
	{"json", "nethttp-full", 2.5}, {"plaintext-single", "nethttp-full", 2.5},
	{"plaintext", "fiber-full", 2},
	{"plaintext", "fasthttp-headers", 0.95},
	{"plaintext-single", "fasthttp", 0.95}, {"json", "fasthttp", 0.95},
}

// latencyGoalShare is the share of the reference server's capacity at which
// hotpath's p99 must be lower than every full-featured peer's.
const latencyGoalShare = 0.8

// writeGoals says, for each goal this run measured, what was measured and
// whether it was met.
func writeGoals(b *bytes.Buffer, r Results) {
	lines := throughputGoalRows(r.Throughput)
	if r.Latency != nil {
		lines = append(lines, latencyGoalRows(*r.Latency)...)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Goals\n\nMeasured in this run, met or not. Throughput ratios are of the medians, with the "+
		"per-round range in brackets.\n\n| goal | measured | met |\n|---|---|---|\n%s\n", strings.Join(lines, "\n"))
}

func throughputGoalRows(t Throughput) []string {
	var out []string
	for _, g := range ratioGoals {
		rows := summariesFor(t.Summary, g.endpoint)
		hp, ok1 := find(rows, "hotpath")
		p, ok2 := find(rows, g.peer)
		if !ok1 || !ok2 || p.RPS == 0 {
			continue
		}
		ratio := hp.RPS / p.RPS
		spread := ""
		if lo, hi, n := roundRatios(t.Runs, g.endpoint, g.peer); n > 1 {
			spread = fmt.Sprintf(" [%.2f–%.2f]", lo, hi)
		}
		out = append(out, fmt.Sprintf("| %s: hotpath ≥ %.2f× %s | %.2f×%s | %s |", g.endpoint, g.min, g.peer, ratio, spread, yesNo(ratio >= g.min)))
	}
	return out
}

func latencyGoalRows(l LatencyAtRate) []string {
	var out []string
	for _, ep := range l.Endpoints {
		hp, ok := l.point("hotpath", ep, l.Reference, latencyGoalShare)
		if !ok {
			continue
		}
		var measured []string
		met, known := true, !hp.GeneratorLimited
		measured = append(measured, "hotpath "+Latency(hp.P99US))
		for _, srv := range l.Servers {
			if !FullPeer(srv) {
				continue
			}
			p, ok := l.point(srv, ep, l.Reference, latencyGoalShare)
			if !ok {
				continue
			}
			measured = append(measured, srv+" "+Latency(p.P99US))
			known = known && !p.GeneratorLimited
			met = met && hp.P99US < p.P99US
		}
		verdict := yesNo(met)
		if !known {
			verdict = "unknown: the generator could not send the rate"
		}
		out = append(out, fmt.Sprintf("| %s: p99 at %.0f %% of %s's capacity, hotpath's lower than every full-featured peer's | %s | %s |",
			ep, 100*latencyGoalShare, l.Reference, strings.Join(measured, ", "), verdict))
	}
	return out
}

// point finds a server's run at a share of basis's capacity.
func (l LatencyAtRate) point(server, endpoint, basis string, share float64) (RatePoint, bool) {
	for _, p := range l.Points {
		if p.Server == server && p.Endpoint == endpoint && p.Basis == basis && p.Share == share {
			return p, true
		}
	}
	return RatePoint{}, false
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

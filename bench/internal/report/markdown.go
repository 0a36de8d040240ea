package report

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Markdown renders report.md.
func Markdown(r Results) []byte {
	var b bytes.Buffer
	e := r.Env
	fmt.Fprintf(&b, "# hotpath benchmark report\n\n")
	fmt.Fprintf(&b, "%s on %s, commit `%s`.\n\n", e.Date, e.Host, e.Commit)
	if e.Note != "" {
		fmt.Fprintf(&b, "**%s**\n\n", e.Note)
	}
	fmt.Fprintf(&b, "## Environment\n\n| | |\n|---|---|\n")
	for _, row := range [][2]string{
		{"CPU", e.CPUModel},
		{"cores", strconv.Itoa(e.Cores)},
		{"kernel", e.Kernel},
		{"Go", e.GoVersion},
		{"commit", e.Commit},
		{"pinning", e.Pinning},
		{"wrk", e.WrkVersion},
		{"load average (1, 5, 15 min) before the load", e.LoadAverage},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], cell(row[1]))
	}
	if len(r.Throughput.Summary) > 0 {
		writeThroughput(&b, r.Throughput)
	}
	if r.Latency != nil {
		writeLatencyAtRate(&b, *r.Latency)
	}
	if r.Curves != nil {
		writeCurves(&b, *r.Curves)
	}
	if r.Compression != nil {
		writeCompression(&b, *r.Compression)
	}
	if r.Capacity != nil {
		writeCapacity(&b, *r.Capacity)
	}
	writeGoals(&b, r)
	return b.Bytes()
}

func writeThroughput(b *bytes.Buffer, t Throughput) {
	fmt.Fprintf(b, "\n## Throughput (closed loop, wrk)\n\n")
	fmt.Fprintf(b, "Command: `%s`\n\n%s", t.Command, measured(t.Env))
	fmt.Fprintf(b, "Each server ran alone on its pinned core with GOMAXPROCS=1 against the %s database. "+
		"wrk: %d connection(s), %d thread(s), %s per run after a %s warm-up; plaintext pipelined %d deep (plaintext-single: one request at a time); "+
		"/queries and /updates with %d queries. %d round(s); the servers take turns in a different order each round, "+
		"and every figure is the median over rounds (errors are summed). wrk waits for each answer before sending the next "+
		"request, so its latencies are optimistic at saturation: use the capacity search for latency objectives.\n\n",
		t.Driver, t.Connections, t.Threads, t.Duration, t.Warmup, t.Pipeline, t.Queries, t.Rounds)
	worst := 0.0
	for _, s := range t.Summary {
		worst = max(worst, s.OtherCPU)
	}
	if worst > starved {
		fmt.Fprintf(b, "**Warning:** other processes used up to %.2f of the servers' pinned CPU during the runs "+
			"(column \"other CPU\"). Those servers got less than a whole core, so their figures are too low and the "+
			"comparison is noisy. Rerun on a quiet machine.\n\n", worst)
	}
	writeHotpathRatios(b, t, "full-featured peer", "Fiber, Gin and net/http doing hotpath's job: request id, nosniff, "+
		"panic recovery, Prometheus metrics by route and status, a JSON access-log line per request on stdout "+
		"(`-discard`: the same line written to a discarded writer), hotpath's timeouts.", FullPeer)
	writeHotpathRatios(b, t, "bare peer", "The ceiling: servers doing only the TechEmpower work, "+
		"without the per-request work above (fasthttp-headers adds hotpath's two headers).",
		func(s string) bool { return !FullPeer(s) && !TracedTwin(s) })
	writeHotpathRatios(b, t, "traced twin", "The same build with tracing on (tracing.sample = 0.01, exporting to an "+
		"OTLP sink in the runner): the price of tracing. Below 1.03 is within the goal of 0.97× or better.", TracedTwin)
	fmt.Fprintf(b, "\n![requests per second](throughput.svg)\n\n![latency percentiles](latency.svg)\n")
	for _, ep := range t.Endpoints {
		rows := summariesFor(t.Summary, ep)
		if len(rows) == 0 {
			continue
		}
		base := baseline(rows)
		fmt.Fprintf(b, "\n### %s\n\n", ep)
		if p := t.Paths[ep]; p != "" {
			fmt.Fprintf(b, "`GET %s`\n\n", p)
		}
		fmt.Fprintf(b, "| server | req/s | vs %s | p50 | p90 | p99 | p99.9 | errors | CPU (cores) | other CPU | req/s per core | peak RSS |\n", base.Server)
		fmt.Fprintf(b, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range rows {
			ratio := "–"
			if base.RPS > 0 {
				ratio = fmt.Sprintf("%.2f×", s.RPS/base.RPS)
			}
			perCore := "–"
			if s.CPUCores > 0 {
				perCore = Rate(s.RPS / s.CPUCores)
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %d | %.2f | %.2f | %s | %s |\n",
				s.Server, Rate(s.RPS), ratio, Latency(s.P50US), Latency(s.P90US), Latency(s.P99US), Latency(s.P999US),
				s.Errors, s.CPUCores, s.OtherCPU, perCore, Bytes(s.PeakRSS))
		}
	}
}

// starved is the share of the server's CPU that other work may take before
// the report warns; idle servers and the kernel's own work stay below it.
const starved = 0.1

func writeCapacity(b *bytes.Buffer, c Capacity) {
	fmt.Fprintf(b, "\n## Capacity (open loop, vegeta)\n\n")
	fmt.Fprintf(b, "Command: `%s`\n\n%s", c.Command, measured(c.Env))
	fmt.Fprintf(b, "Endpoint /%s on the %s database. Requests arrive at a constant rate whatever the server's speed, "+
		"each step for %s; the search doubles the rate until a step misses the objective (p99 ≤ %s, no errors, "+
		"throughput ≥ 95 %% of the rate), then bisects. Sustained rate is the highest step that met it.\n\n",
		c.Endpoint, c.Driver, c.Step, Latency(c.TargetP99US))
	fmt.Fprintf(b, "![latency against offered rate](capacity.svg)\n\n")
	fmt.Fprintf(b, "| server | sustained req/s | search ended by |\n|---|--:|---|\n")
	for _, s := range c.Servers {
		fmt.Fprintf(b, "| %s | %s | %s |\n", s.Server, Rate(s.MaxRate), cell(s.Limit))
	}
	for _, s := range c.Servers {
		fmt.Fprintf(b, "\n### %s: steps\n\n", s.Server)
		fmt.Fprintf(b, "| rate | sent | throughput | p50 | p90 | p99 | max | errors | server CPU | generator CPU | meets objective |\n")
		fmt.Fprintf(b, "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		for _, st := range sortedSteps(s.Steps) {
			ok := "no"
			if st.OK {
				ok = "yes"
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %d | %.2f | %.2f | %s |\n",
				Rate(float64(st.Rate)), Rate(st.Sent), Rate(st.Achieved), Latency(st.P50US), Latency(st.P90US),
				Latency(st.P99US), Latency(st.MaxUS), st.Errors, st.ServerCPU, st.LoadCPU, ok)
		}
	}
}

// measured says when and on what a part was run, since a results directory
// may hold parts from different runs.
func measured(e Env) string {
	return fmt.Sprintf("Measured %s at commit `%s`; load average before the load: %s.\n\n", e.Date, e.Commit, cell(e.LoadAverage))
}

func summariesFor(all []Summary, endpoint string) []Summary {
	var rows []Summary
	for _, s := range all {
		if s.Endpoint == endpoint {
			rows = append(rows, s)
		}
	}
	return rows
}

// baseline is hotpath's row when it ran, else the first: ratios compare to it.
func baseline(rows []Summary) Summary {
	if s, ok := find(rows, "hotpath"); ok {
		return s
	}
	return rows[0]
}

// Rate formats a per-second figure with thousands separators.
func Rate(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Latency formats microseconds as µs below a millisecond, else ms.
func Latency(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

// Bytes formats a size in MiB.
func Bytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func cell(s string) string {
	if s == "" {
		return "–"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// FullPeer reports whether a server is one of the full-featured peers,
// named NAME-full or NAME-full-discard.
func FullPeer(name string) bool {
	return strings.HasSuffix(name, "-full") || strings.HasSuffix(name, "-full-discard")
}

// TracedTwin reports whether a server is hotpath with tracing on.
func TracedTwin(name string) bool { return name == "hotpath-traced" }

// writeHotpathRatios tabulates hotpath's throughput divided by that of each
// peer in the group, the figure hotpath's throughput targets are stated in:
// the ratio of the medians, and in brackets the lowest and highest ratio
// within one round, where the two servers ran back to back.
func writeHotpathRatios(b *bytes.Buffer, t Throughput, group, about string, member func(string) bool) {
	if !slices.Contains(t.Servers, "hotpath") {
		return
	}
	var peers []string
	for _, s := range t.Servers {
		if s != "hotpath" && member(s) {
			peers = append(peers, s)
		}
	}
	if len(peers) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### hotpath ÷ each %s\n\n%s hotpath's req/s divided by the peer's: the ratio of the medians, "+
		"then [lowest–highest] of the per-round ratios (the two ran back to back in each round).\n\n", group, about)
	fmt.Fprintf(b, "| endpoint | %s |\n|---|%s\n", strings.Join(peers, " | "), strings.Repeat("--:|", len(peers)))
	for _, ep := range t.Endpoints {
		rows := summariesFor(t.Summary, ep)
		hp, ok := find(rows, "hotpath")
		if !ok || hp.RPS == 0 {
			continue
		}
		cells := make([]string, len(peers))
		for i, peer := range peers {
			cells[i] = "–"
			if p, ok := find(rows, peer); ok && p.RPS > 0 {
				cells[i] = fmt.Sprintf("%.2f×", hp.RPS/p.RPS)
				if lo, hi, n := roundRatios(t.Runs, ep, peer); n > 1 {
					cells[i] += fmt.Sprintf(" [%.2f–%.2f]", lo, hi)
				}
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", ep, strings.Join(cells, " | "))
	}
}

func find(rows []Summary, server string) (Summary, bool) {
	for _, s := range rows {
		if s.Server == server {
			return s, true
		}
	}
	return Summary{}, false
}

// roundRatios returns the lowest and highest hotpath/peer ratio over the
// rounds in which both answered on ep, and how many rounds that was.
func roundRatios(runs []Run, ep, peer string) (lo, hi float64, n int) {
	byRound := map[int][2]float64{}
	for _, r := range runs {
		if r.Endpoint != ep {
			continue
		}
		v := byRound[r.Round]
		switch r.Server {
		case "hotpath":
			v[0] = r.RPS
		case peer:
			v[1] = r.RPS
		}
		byRound[r.Round] = v
	}
	var ratios []float64
	for _, v := range byRound {
		if v[0] != 0 && v[1] != 0 {
			ratios = append(ratios, v[0]/v[1])
		}
	}
	return spread(ratios)
}

// spread returns the lowest and highest of ratios and how many there are.
func spread(ratios []float64) (lo, hi float64, n int) {
	for _, ratio := range ratios {
		if n == 0 || ratio < lo {
			lo = ratio
		}
		if n == 0 || ratio > hi {
			hi = ratio
		}
		n++
	}
	return lo, hi, n
}

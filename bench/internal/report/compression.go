package report

import (
	"bytes"
	"fmt"
)

// Compression is what hotpath's response compression buys and costs: each
// page asked for in each coding, round after round, on one server.
type Compression struct {
	Command string `json:"command"`
	// Env is the environment of this part; see Throughput.Env.
	Env         Env    `json:"environment"`
	Driver      string `json:"driver"`
	Server      string `json:"server"`
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Connections int    `json:"connections"`
	Threads     int    `json:"threads"`
	Rounds      int    `json:"rounds"`
	// Pages are the request paths; Codings the Accept-Encoding values
	// asked for, identity (uncompressed) first.
	Pages   []string         `json:"pages"`
	Codings []string         `json:"codings"`
	Runs    []CompressionRun `json:"runs"`
	// Summary holds one row per page and coding: medians over rounds.
	Summary []CompressionSummary `json:"summary"`
	// Notes say what the part could not measure and why.
	Notes []string `json:"notes,omitempty"`
}

// CompressionRun is one wrk run of one page in one coding.
type CompressionRun struct {
	Page     string  `json:"page"`
	Coding   string  `json:"coding"`
	Round    int     `json:"round"`
	RPS      float64 `json:"rps"`
	Requests int64   `json:"requests"`
	// ResponseBytes is wrk's bytes read divided by answers: the status
	// line and headers are in it as well as the body.
	ResponseBytes float64 `json:"response_bytes"`
	// CPUPerRequestUS is the server's CPU time (user+system) over the run
	// divided by answers, in microseconds.
	CPUPerRequestUS float64 `json:"cpu_per_request_us"`
	// Errors are socket errors plus answers with status >= 400.
	Errors int64 `json:"errors"`
}

// CompressionSummary is the median of one page's runs in one coding.
type CompressionSummary struct {
	Page            string  `json:"page"`
	Coding          string  `json:"coding"`
	Rounds          int     `json:"rounds"`
	RPS             float64 `json:"rps"`
	ResponseBytes   float64 `json:"response_bytes"`
	CPUPerRequestUS float64 `json:"cpu_per_request_us"`
	// Errors is the sum over rounds.
	Errors int64 `json:"errors"`
}

// IdentityCoding is the Accept-Encoding value that asks for an answer as it
// is; the other codings are compared with it.
const IdentityCoding = "identity"

// Summarize fills c.Summary from c.Runs, in the order of c.Pages and
// c.Codings.
func (c *Compression) Summarize() {
	c.Summary = c.Summary[:0]
	for _, page := range c.Pages {
		for _, coding := range c.Codings {
			runs := c.runs(page, coding)
			if len(runs) == 0 {
				continue
			}
			s := CompressionSummary{Page: page, Coding: coding, Rounds: len(runs)}
			s.RPS = median(runs, func(r CompressionRun) float64 { return r.RPS })
			s.ResponseBytes = median(runs, func(r CompressionRun) float64 { return r.ResponseBytes })
			s.CPUPerRequestUS = median(runs, func(r CompressionRun) float64 { return r.CPUPerRequestUS })
			for _, r := range runs {
				s.Errors += r.Errors
			}
			c.Summary = append(c.Summary, s)
		}
	}
}

func (c Compression) runs(page, coding string) []CompressionRun {
	var out []CompressionRun
	for _, r := range c.Runs {
		if r.Page == page && r.Coding == coding {
			out = append(out, r)
		}
	}
	return out
}

func (c Compression) summary(page, coding string) (CompressionSummary, bool) {
	for _, s := range c.Summary {
		if s.Page == page && s.Coding == coding {
			return s, true
		}
	}
	return CompressionSummary{}, false
}

// roundRatios returns the lowest and highest ratio of a coding's req/s to
// identity's on one page over the rounds in which both answered, and how
// many rounds that was.
func (c Compression) roundRatios(page, coding string) (lo, hi float64, n int) {
	identity := map[int]float64{}
	for _, r := range c.runs(page, IdentityCoding) {
		identity[r.Round] = r.RPS
	}
	var ratios []float64
	for _, r := range c.runs(page, coding) {
		if base := identity[r.Round]; base != 0 && r.RPS != 0 {
			ratios = append(ratios, r.RPS/base)
		}
	}
	return spread(ratios)
}

func writeCompression(b *bytes.Buffer, c Compression) {
	fmt.Fprintf(b, "\n## Compression: what it buys and costs\n\n")
	warmup := "without a warm-up"
	if c.Warmup != "" && c.Warmup != "0s" {
		warmup = "after a " + c.Warmup + " warm-up in each coding"
	}
	fmt.Fprintf(b, "Command: `%s`\n\n%s", c.Command, measured(c.Env))
	fmt.Fprintf(b, "%s alone on its pinned core (GOMAXPROCS=1), %s database, compressing as its config file says "+
		"(`server.compress`, `server.compress_min_size`: on, and 1024 bytes, by default). Each page is asked for "+
		"with `Accept-Encoding: <coding>`; before measuring, the runner checks that an answer comes back in that coding "+
		"(identity: uncompressed). wrk: %d connection(s), %d thread(s), %s per run %s; "+
		"%d round(s), the codings taking turns in a different order each round, and every figure is the median over "+
		"rounds (errors are summed).\n\n",
		c.Server, c.Driver, c.Connections, c.Threads, c.Duration, warmup, c.Rounds)
	fmt.Fprintf(b, "÷ identity is the coding's req/s divided by identity's on the same page: the ratio of the medians, "+
		"then [lowest–highest] of the per-round ratios (the two ran in the same round). Bytes per answer is what wrk "+
		"read divided by the answers, so the status line and headers count as well as the body; in brackets, its share "+
		"of identity's. CPU per request is the server's user+system time over the run divided by the answers.\n")
	for _, n := range c.Notes {
		fmt.Fprintf(b, "\n**Note:** %s\n", n)
	}
	if len(c.Summary) == 0 {
		return
	}
	fmt.Fprintf(b, "\n| page | coding | req/s | ÷ identity | bytes per answer | CPU per request |\n")
	fmt.Fprintf(b, "|---|---|--:|--:|--:|--:|\n")
	for _, s := range c.Summary {
		ratio, share := "–", ""
		id, ok := c.summary(s.Page, IdentityCoding)
		switch {
		case s.Coding == IdentityCoding:
			ratio = "1.00×"
		case ok && id.RPS > 0:
			ratio = fmt.Sprintf("%.2f×", s.RPS/id.RPS)
			if lo, hi, n := c.roundRatios(s.Page, s.Coding); n > 1 {
				ratio += fmt.Sprintf(" [%.2f–%.2f]", lo, hi)
			}
			if id.ResponseBytes > 0 {
				share = fmt.Sprintf(" (%.0f %%)", 100*s.ResponseBytes/id.ResponseBytes)
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s B%s | %.0f µs |\n", s.Page, s.Coding, Rate(s.RPS)+errorsNote(s.Errors),
			ratio, Rate(s.ResponseBytes), share, s.CPUPerRequestUS)
	}
	fmt.Fprintf(b, "\nOn loopback the wire costs nothing, so compressing can only lower req/s here: a ratio above 1 is "+
		"noise between runs, or a server held up by its database rather than its CPU. CPU per request is the cost, and "+
		"where other work shares the machine it moves less than req/s; what compressing buys is the bytes column, "+
		"which a client on a real network waits for.\n")
}

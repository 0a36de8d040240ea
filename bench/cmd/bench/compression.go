package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/wrk"
)

// compressionCodings are the Accept-Encoding values the compression part
// asks for: identity, the baseline, then hotpath's codings in the order it
// prefers them.
var compressionCodings = []string{report.IdentityCoding, "zstd", "br", "gzip"}

// compressionPages are the pages the compression part loads: the TechEmpower
// fortunes page (HTML: the 12 standard fortunes and the one added at request
// time) and a full page of the API's fortune list (JSON).
var compressionPages = []string{"/fortunes", "/api/v1/fortunes?limit=" + strconv.Itoa(pageFortunes)}

// compression loads each of hotpath's compressed pages in each coding, round
// after round with the codings in a rotating order, and returns the runs with
// their medians and a list of problems.
func compression(ctx context.Context, o options, s *server, loadCPUs, command string) (*report.Compression, []string) {
	c := &report.Compression{Command: command, Driver: o.driver, Server: s.name,
		Duration: o.duration.String(), Warmup: o.warmup.String(), Connections: o.connections, Threads: o.threads,
		Rounds: o.rounds, Codings: compressionCodings}
	var problems []string
	for _, page := range compressionPages {
		if ctx.Err() != nil {
			break
		}
		api := strings.HasPrefix(page, "/api/")
		if api && o.driver != "postgres" {
			c.Notes = append(c.Notes, fmt.Sprintf("`%s` runs on PostgreSQL only: it adds fortunes to the shared "+
				"database so that the page is full, and with SQLite every server has a database of its own.", page))
			continue
		}
		c.Pages = append(c.Pages, page)
		if !api {
			problems = append(problems, compressionPage(ctx, o, s, c, page, loadCPUs)...)
			continue
		}
		undo, err := addPageFortunes(ctx, o.dsn)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		problems = append(problems, compressionPage(ctx, o, s, c, page, loadCPUs)...)
		if err := undo(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	c.Summarize()
	return c, problems
}

// compressionPage checks that s answers page in each coding and warms each
// up, then measures them round after round, adding the runs to c.
func compressionPage(ctx context.Context, o options, s *server, c *report.Compression, page, loadCPUs string) []string {
	url := "http://" + s.addr + page
	var problems []string
	var codings []string
	for _, coding := range compressionCodings {
		if err := checkCoding(ctx, url, coding); err != nil {
			problems = append(problems, fmt.Sprintf("compression %s %s: %v", page, coding, err))
			continue
		}
		if o.warmup > 0 {
			warm := compressionOptions(o, url, coding, loadCPUs)
			warm.Duration = o.warmup
			if _, _, err := wrk.Run(ctx, warm); err != nil {
				problems = append(problems, fmt.Sprintf("warm-up compression %s %s: %v", page, coding, err))
				continue
			}
		}
		codings = append(codings, coding)
	}
	for round := 1; round <= o.rounds; round++ {
		for _, coding := range rotate(codings, round-1) {
			if ctx.Err() != nil {
				return problems
			}
			l, err := runLoad(ctx, s, compressionOptions(o, url, coding, loadCPUs))
			if err != nil {
				problems = append(problems, fmt.Sprintf("round %d compression %s %s: %v", round, page, coding, err))
				continue
			}
			r := report.CompressionRun{Page: page, Coding: coding, Round: round,
				RPS: l.res.RPS(), Requests: l.res.Requests, Errors: l.res.Errors.Total()}
			if r.Requests > 0 {
				r.ResponseBytes = float64(l.res.Bytes) / float64(r.Requests)
				r.CPUPerRequestUS = float64(l.cpu.Microseconds()) / float64(r.Requests)
			}
			c.Runs = append(c.Runs, r)
			fmt.Printf("round %d/%d  compression %-28s %-8s %12s req/s  %8s B/answer  cpu %6.1f µs/request  errors %d\n",
				round, o.rounds, page, coding, report.Rate(r.RPS), report.Rate(r.ResponseBytes), r.CPUPerRequestUS, r.Errors)
			switch {
			case r.Requests == 0:
				problems = append(problems, fmt.Sprintf("round %d compression %s %s: no requests answered", round, page, coding))
			case r.Errors > 0:
				problems = append(problems, fmt.Sprintf("round %d compression %s %s: %d errors (%+v)",
					round, page, coding, r.Errors, l.res.Errors))
			}
		}
	}
	return problems
}

func compressionOptions(o options, url, coding, loadCPUs string) wrk.Options {
	return wrk.Options{URL: url, Threads: o.threads, Connections: o.connections, Duration: o.duration, CPUs: loadCPUs,
		Headers: []string{"Accept-Encoding: " + coding}}
}

// checkCoding asks for url once in coding and checks that the answer came in
// it, so that a config with server.compress off, or a page below
// server.compress_min_size, fails the part rather than filling the table with
// uncompressed figures under the codings' names.
func checkCoding(ctx context.Context, url, coding string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("check the coding: %w", err)
	}
	// Set by hand, the header also keeps net/http from decoding the answer
	// and dropping its Content-Encoding.
	req.Header.Set("Accept-Encoding", coding)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("check the coding: %w", err)
	}
	io.Copy(io.Discard, resp.Body) // drain so the connection is reused
	resp.Body.Close()
	got, want := resp.Header.Get("Content-Encoding"), coding
	if coding == report.IdentityCoding {
		want = ""
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("asked with Accept-Encoding: %s, got status %d", coding, resp.StatusCode)
	case got != want && want == "":
		return fmt.Errorf("asked with Accept-Encoding: identity, got Content-Encoding %q", got)
	case got != want:
		return fmt.Errorf("asked with Accept-Encoding: %s, got Content-Encoding %q: is server.compress on in -config, "+
			"and the page larger than server.compress_min_size?", coding, got)
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/wrk"
)

// throughput drives every server on every endpoint it serves with wrk, round
// after round, and returns the runs with their medians and a list of
// problems (runs with errors or without requests).
func throughput(ctx context.Context, o options, servers []*server, loadCPUs, command string) (report.Throughput, []string) {
	t := report.Throughput{
		Command: command, Driver: o.driver, Endpoints: o.endpoints,
		Duration: o.duration.String(), Warmup: o.warmup.String(),
		Connections: o.connections, Threads: o.threads, Pipeline: o.pipeline, Queries: o.queries, Rounds: o.rounds,
	}
	for _, s := range servers {
		t.Servers = append(t.Servers, s.name)
	}
	t.Paths = map[string]string{}
	for _, ep := range o.endpoints {
		t.Paths[ep] = strings.TrimPrefix(endpointURL("", ep, o.queries), "http://")
	}
	var problems []string
	warmed := map[string]bool{}
	for round := 1; round <= o.rounds; round++ {
		for _, ep := range o.endpoints {
			for _, s := range rotate(servers, round-1) {
				if ctx.Err() != nil {
					return t, problems
				}
				if !serves(s.name, ep) {
					continue
				}
				opts := wrkOptions(o, s, ep, loadCPUs)
				if key := s.name + " " + ep; o.warmup > 0 && !warmed[key] {
					warmed[key] = true
					warm := opts
					warm.Duration = o.warmup
					if _, _, err := wrk.Run(ctx, warm); err != nil {
						problems = append(problems, fmt.Sprintf("warm-up %s %s: %v", s.name, ep, err))
						continue
					}
				}
				r, err := measure(ctx, s, ep, round, opts)
				if err != nil {
					problems = append(problems, fmt.Sprintf("round %d %s %s: %v", round, s.name, ep, err))
					continue
				}
				t.Runs = append(t.Runs, r)
				fmt.Printf("round %d/%d  %-16s %-20s %12s req/s  p50 %9s  p99 %9s  errors %d  cpu %.2f (other %.2f)  rss %s\n",
					round, o.rounds, ep, s.name, report.Rate(r.RPS), report.Latency(r.LatencyUS.P50),
					report.Latency(r.LatencyUS.P99), r.Errors.Total(), r.CPUCores, r.OtherCPU, report.Bytes(r.PeakRSS))
				switch {
				case r.Requests == 0:
					problems = append(problems, fmt.Sprintf("round %d %s %s: no requests answered", round, s.name, ep))
				case r.Errors.Total() > 0:
					problems = append(problems, fmt.Sprintf("round %d %s %s: %d errors (%+v)",
						round, s.name, ep, r.Errors.Total(), r.Errors))
				}
			}
		}
	}
	t.Summarize()
	return t, problems
}

func wrkOptions(o options, s *server, ep, loadCPUs string) wrk.Options {
	opts := wrk.Options{
		URL:         endpointURL(s.addr, ep, o.queries),
		Threads:     o.threads,
		Connections: o.connections,
		Duration:    o.duration,
		CPUs:        loadCPUs,
	}
	if ep == "plaintext" && o.pipeline > 1 {
		opts.Scripts = []string{"pipeline.lua"}
		opts.Args = []string{strconv.Itoa(o.pipeline)}
	}
	return opts
}

// measure runs wrk once and reads the server's CPU time and peak memory
// around it.
// When the server is pinned it also measures how busy its CPU was with
// anything else (other servers idling, or work outside the bench).
func measure(ctx context.Context, s *server, ep string, round int, opts wrk.Options) (report.Run, error) {
	var busyBefore, busyAfter time.Duration
	if err := s.trimLog(); err != nil {
		return report.Run{}, err
	}
	before, err := s.stat()
	if err == nil && s.cpu != "" {
		busyBefore, err = cpuBusy(s.cpu)
	}
	if err != nil {
		return report.Run{}, err
	}
	start := time.Now()
	res, _, err := wrk.Run(ctx, opts)
	wall := time.Since(start).Seconds()
	if err != nil {
		return report.Run{}, err
	}
	after, err := s.stat()
	if err == nil && s.cpu != "" {
		busyAfter, err = cpuBusy(s.cpu)
	}
	if err != nil {
		return report.Run{}, err
	}
	r := report.Run{
		Server: s.name, Endpoint: ep, Round: round,
		RPS: res.RPS(), Requests: res.Requests, LatencyUS: res.LatencyUS, Errors: res.Errors,
		CPUCores: (after.cpu - before.cpu).Seconds() / wall,
		PeakRSS:  after.peakRSS,
	}
	if s.cpu != "" {
		// Tick rounding can make the difference slightly negative.
		r.OtherCPU = max((busyAfter-busyBefore).Seconds()/wall-r.CPUCores, 0)
	}
	return r, nil
}

// rotate returns list starting at index k, so each round has a different
// server (or coding) go first and none always runs on a freshly idle machine.
func rotate[T any](list []T, k int) []T {
	if len(list) == 0 {
		return nil
	}
	k %= len(list)
	return append(append([]T{}, list[k:]...), list[:k]...)
}

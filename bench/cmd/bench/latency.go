package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/wrk"
)

// latencyShares are the shares of a capacity each server is run at.
var latencyShares = []float64{0.25, 0.5, 0.8}

// latencyAtRate runs every latency server on every latency endpoint at
// shares of its own capacity and of the reference server's, and at the fixed
// rates of -latency-rates. Capacities come from this run's throughput
// medians when there are any, else from a short wrk probe.
func latencyAtRate(ctx context.Context, o options, servers []*server, tp report.Throughput, loadCPUs, command string) (*report.LatencyAtRate, []string) {
	l := &report.LatencyAtRate{Command: command, Driver: o.driver, Step: o.latencyStep.String(), Reference: o.reference,
		Endpoints: o.latencyEndpoints, Paths: map[string]string{}}
	var problems []string
	for _, ep := range o.latencyEndpoints {
		l.Paths[ep] = strings.TrimPrefix(endpointURL("", ep, o.queries), "http://")
	}
	active := pick(servers, o.latencyServers)
	for _, s := range active {
		l.Servers = append(l.Servers, s.name)
	}
	for _, ep := range o.latencyEndpoints {
		capacity := map[string]float64{}
		for _, s := range active {
			if !serves(s.name, ep) || ctx.Err() != nil {
				continue
			}
			c, err := measureCapacity(ctx, o, s, ep, tp, loadCPUs)
			if err != nil {
				problems = append(problems, fmt.Sprintf("capacity %s %s: %v", s.name, ep, err))
				continue
			}
			capacity[s.name] = c.RPS
			l.Capacities = append(l.Capacities, c)
			fmt.Printf("latency  %-16s %-20s capacity %s req/s (%s)\n", ep, s.name, report.Rate(c.RPS), c.Source)
		}
		for _, s := range active {
			if capacity[s.name] == 0 {
				continue
			}
			for _, r := range rateRuns(o, s.name, capacity) {
				if ctx.Err() != nil {
					return l, problems
				}
				p, err := ratePoint(ctx, o, s, ep, r.Rate)
				if err != nil {
					problems = append(problems, fmt.Sprintf("latency %s %s at %d/s: %v", s.name, ep, r.Rate, err))
					continue
				}
				p.Basis, p.Share = r.Basis, r.Share
				l.Points = append(l.Points, p)
				note := ""
				if p.GeneratorLimited {
					note = "  (generator-limited)"
				}
				fmt.Printf("latency  %-16s %-20s %-18s %9s/s  sent %9s/s  p50 %9s  p99 %9s  p99.9 %9s  errors %d%s\n",
					ep, s.name, report.Basis(p), report.Rate(float64(r.Rate)), report.Rate(p.Sent), report.Latency(p.P50US),
					report.Latency(p.P99US), report.Latency(p.P999US), p.Errors, note)
				if p.Errors > 0 {
					problems = append(problems, fmt.Sprintf("latency %s %s at %d/s: %d errors", s.name, ep, r.Rate, p.Errors))
				}
				time.Sleep(time.Second) // let queues drain between rates
			}
		}
	}
	return l, problems
}

// rateRuns are the rates a server runs at: the shares of its own capacity,
// of the reference server's, and the fixed rates.
func rateRuns(o options, server string, capacity map[string]float64) []report.RatePoint {
	bases := []string{server}
	if capacity[o.reference] > 0 && o.reference != server {
		bases = append(bases, o.reference)
	}
	var runs []report.RatePoint
	for _, basis := range bases {
		for _, share := range latencyShares {
			r := report.RatePoint{Basis: basis, Share: share}
			r.Rate = max(int(share*capacity[basis]+0.5), 1)
			runs = append(runs, r)
		}
	}
	for _, rate := range o.latencyRates {
		r := report.RatePoint{Basis: report.FixedRate}
		r.Rate = rate
		runs = append(runs, r)
	}
	return runs
}

// measureCapacity takes the server's median req/s on ep from this run's
// throughput part, or measures it with a short wrk run.
func measureCapacity(ctx context.Context, o options, s *server, ep string, tp report.Throughput, loadCPUs string) (report.MeasuredCapacity, error) {
	c := report.MeasuredCapacity{Server: s.name, Endpoint: ep}
	for _, sum := range tp.Summary {
		if sum.Server == s.name && sum.Endpoint == ep && sum.RPS > 0 && sum.Errors == 0 {
			c.RPS, c.Source = sum.RPS, fmt.Sprintf("throughput median (wrk, %d connections)", tp.Connections)
			return c, nil
		}
	}
	opts := wrkOptions(o, s, ep, loadCPUs)
	opts.Duration = o.latencyProbe
	res, _, err := wrk.Run(ctx, opts)
	if err != nil {
		return c, err
	}
	if res.Errors.Total() > 0 || res.Requests == 0 {
		return c, fmt.Errorf("probe: %d requests, %d errors", res.Requests, res.Errors.Total())
	}
	c.RPS, c.Source = res.RPS(), fmt.Sprintf("wrk probe, %d connections, %s", o.connections, o.latencyProbe)
	return c, nil
}

// ratePoint runs one constant-rate attack with the server's and the
// generator's CPU measured around it.
func ratePoint(ctx context.Context, o options, s *server, ep string, rate int) (report.RatePoint, error) {
	st, _, err := measuredAttack(ctx, s, endpointURL(s.addr, ep, o.queries), rate, o.latencyStep, 0)
	if err != nil {
		return report.RatePoint{}, err
	}
	return report.RatePoint{Server: s.name, Endpoint: ep, CapacityStep: st, GeneratorLimited: st.Sent < 0.95*float64(rate)}, nil
}

// pick returns the running servers named in names, in the order started.
func pick(servers []*server, names []string) []*server {
	var out []*server
	for _, s := range servers {
		if slices.Contains(names, s.name) {
			out = append(out, s)
		}
	}
	return out
}

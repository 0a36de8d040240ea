package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/internal/tfb"
	"github.com/hotpath/hotpath/bench/wrk"
)

// curves measures how each curve server's cost grows: req/s and p99 against
// connections, req/s against the size of the answer and against queries per
// request, and resident memory against idle keep-alive connections.
func curves(ctx context.Context, o options, l launch, servers []*server, loadCPUs, command string) (*report.Curves, []string) {
	c := &report.Curves{Command: command, Driver: o.driver, Duration: o.curveDuration.String(),
		Endpoint: o.curveEndpoint, Connections: o.connections}
	active := pick(servers, o.curveServers)
	for _, s := range active {
		c.Servers = append(c.Servers, s.name)
	}
	var problems []string
	add := func(curve string, s *server, x float64, url string, connections int) {
		p, err := curvePoint(ctx, o, s, url, connections, loadCPUs)
		if err != nil {
			problems = append(problems, fmt.Sprintf("curve %s %s at %g: %v", curve, s.name, x, err))
			return
		}
		p.Curve, p.X = curve, x
		c.Points = append(c.Points, p)
		fmt.Printf("curve    %-12s %-20s %8s  %12s req/s  p99 %9s  errors %d\n", curve, s.name, report.Rate(x),
			report.Rate(p.RPS), report.Latency(p.P99US), p.Errors)
		if p.Errors > 0 {
			problems = append(problems, fmt.Sprintf("curve %s %s at %g: %d errors", curve, s.name, x, p.Errors))
		}
	}
	for _, s := range active {
		for _, n := range o.curveConnections {
			if ctx.Err() == nil && serves(s.name, o.curveEndpoint) {
				add(report.CurveConnections, s, float64(n), endpointURL(s.addr, o.curveEndpoint, o.queries), n)
			}
		}
		for _, q := range o.curveQueries {
			if ctx.Err() == nil && serves(s.name, "queries") {
				add(report.CurveQueries, s, float64(q), endpointURL(s.addr, "queries", q), o.connections)
			}
		}
	}

	if o.driver == "postgres" {
		undo, err := addPageFortunes(ctx, o.dsn)
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			for _, s := range active {
				for _, limit := range o.curveSizes {
					if ctx.Err() == nil && serves(s.name, "api-fortunes") {
						url := "http://" + s.addr + "/api/v1/fortunes?limit=" + strconv.Itoa(limit)
						add(report.CurveSize, s, float64(limit), url, o.connections)
					}
				}
			}
			if err := undo(); err != nil {
				problems = append(problems, err.Error())
			}
		}
	} else {
		c.Notes = append(c.Notes, "The size curve runs on PostgreSQL only: it adds fortunes to the shared "+
			"database for its pages, and with SQLite every server has a database of its own.")
	}

	targets, note := idleTargets(o.curveIdle, o.fileLimit)
	if note != "" {
		c.Notes = append(c.Notes, note)
	}
	for _, s := range active {
		if ctx.Err() != nil || len(targets) == 0 {
			break
		}
		points, err := idleCurve(ctx, l, s.name, targets)
		if err != nil {
			problems = append(problems, fmt.Sprintf("curve idle %s: %v", s.name, err))
		}
		for _, p := range points {
			p.Curve, p.Server = report.CurveIdle, s.name
			c.Points = append(c.Points, p)
			fmt.Printf("curve    %-12s %-20s %8s idle connections  RSS %s\n", report.CurveIdle, s.name, report.Rate(p.X), report.Bytes(p.RSS))
		}
	}
	return c, problems
}

// curvePoint is one wrk run of a server at url with the given connections.
func curvePoint(ctx context.Context, o options, s *server, url string, connections int, loadCPUs string) (report.CurvePoint, error) {
	opts := wrk.Options{URL: url, Threads: o.threads, Connections: connections, Duration: o.curveDuration, CPUs: loadCPUs}
	l, err := runLoad(ctx, s, opts)
	if err != nil {
		return report.CurvePoint{}, err
	}
	p := report.CurvePoint{Server: s.name, RPS: l.res.RPS(), P99US: l.res.LatencyUS.P99, Errors: l.res.Errors.Total(),
		CPUCores: l.cpu.Seconds() / l.wall.Seconds(), RSS: l.after.rss}
	if l.res.Requests > 0 {
		p.ResponseBytes = float64(l.res.Bytes) / float64(l.res.Requests)
	}
	return p, nil
}

// loadRun is one wrk run with the server's CPU time measured around it.
type loadRun struct {
	res   wrk.Result
	cpu   time.Duration // the server's user+system time over the run
	wall  time.Duration
	after procStat
}

// runLoad runs wrk once against s and reads the server's CPU time before
// and after.
func runLoad(ctx context.Context, s *server, opts wrk.Options) (loadRun, error) {
	before, err := s.stat()
	if err != nil {
		return loadRun{}, err
	}
	if err := s.trimLog(); err != nil {
		return loadRun{}, err
	}
	start := time.Now()
	res, _, err := wrk.Run(ctx, opts)
	wall := time.Since(start)
	if err != nil {
		return loadRun{}, err
	}
	after, err := s.stat()
	if err != nil {
		return loadRun{}, err
	}
	return loadRun{res: res, cpu: after.cpu - before.cpu, wall: wall, after: after}, nil
}

// pageFortunes is the id range of the fortunes the size curve adds, far
// above any the servers or the seed create.
const pageFortunesFirst, pageFortunes = 900001, 100

// addPageFortunes adds fortunes so that a page of 100 is full (the standard
// table has 12), and returns the function that removes them again: the
// TechEmpower /fortunes page must keep its 12 rows. Rows of that range left
// by an interrupted run are replaced.
func addPageFortunes(ctx context.Context, dsn string) (undo func() error, err error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("size curve: connect: %w", err)
	}
	remove := func() error {
		_, err := conn.Exec(context.Background(), "DELETE FROM Fortune WHERE id >= $1 AND id < $2", pageFortunesFirst, pageFortunesFirst+pageFortunes)
		conn.Close(context.Background())
		if err != nil {
			return fmt.Errorf("size curve: remove its fortunes: %w", err)
		}
		return nil
	}
	batch := &pgx.Batch{}
	batch.Queue("DELETE FROM Fortune WHERE id >= $1 AND id < $2", pageFortunesFirst, pageFortunesFirst+pageFortunes)
	for i := range pageFortunes {
		f := tfb.StandardFortunes[i%len(tfb.StandardFortunes)]
		batch.Queue("INSERT INTO Fortune (id, message) VALUES ($1, $2)", pageFortunesFirst+i, f.Message)
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		remove()
		return nil, fmt.Errorf("size curve: add fortunes: %w", err)
	}
	return remove, nil
}

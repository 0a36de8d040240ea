package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sys/unix"

	"github.com/hotpath/hotpath/bench/internal/report"
)

// capacitySearch finds, for each server, the highest constant arrival rate
// on o.endpoint whose p99 stays within o.p99 with no errors.
func capacitySearch(ctx context.Context, o options, servers []*server, command string) *report.Capacity {
	c := &report.Capacity{
		Command: command, Driver: o.driver, Endpoint: o.endpoint,
		TargetP99US: float64(o.p99.Microseconds()), Step: o.step.String(),
	}
	for _, s := range servers {
		if !serves(s.name, o.endpoint) {
			continue
		}
		fmt.Printf("capacity %s /%s: objective p99 <= %s\n", s.name, o.endpoint, o.p99)
		cs := search(ctx, o, s)
		cs.Server = s.name
		c.Servers = append(c.Servers, cs)
	}
	return c
}

// search doubles the rate from o.startRate until a step misses the
// objective, then bisects between the best passing and first failing rate
// until they are within 5 %.
func search(ctx context.Context, o options, s *server) report.CapacityServer {
	var cs report.CapacityServer
	url := endpointURL(s.addr, o.endpoint, o.queries)
	good, bad := 0, 0
	rate := o.startRate
	for ctx.Err() == nil {
		if rate > o.maxRate {
			cs.Limit = fmt.Sprintf("-max-rate %d reached", o.maxRate)
			break
		}
		st, why, err := measuredAttack(ctx, s, url, rate, o.step, o.p99)
		if err != nil {
			cs.Limit = err.Error()
			break
		}
		cs.Steps = append(cs.Steps, st)
		fmt.Printf("  rate %8s  sent %8s  ok %8s/s  p50 %9s  p99 %9s  errors %d  cpu server %.2f load %.2f  %s\n",
			report.Rate(float64(rate)), report.Rate(st.Sent), report.Rate(st.Achieved),
			report.Latency(st.P50US), report.Latency(st.P99US), st.Errors, st.ServerCPU, st.LoadCPU, okOr(why))
		if st.Sent < 0.95*float64(rate) {
			cs.Limit = fmt.Sprintf("the load generator could send only %s of %s req/s; the server's limit is higher",
				report.Rate(st.Sent), report.Rate(float64(rate)))
			break
		}
		// A generator that used its whole CPU delays its own reading of
		// answers, which shows up as latency the server did not cause.
		if !st.OK && st.LoadCPU >= 0.9*float64(loadCores()) {
			cs.Limit = fmt.Sprintf("at %s req/s the load generator used %.2f of its %d CPU(s) while the server used %.2f: "+
				"the generator, not the server, hit its limit (%s)", report.Rate(float64(rate)), st.LoadCPU, loadCores(), st.ServerCPU, why)
			break
		}
		if st.OK {
			good = rate
		} else {
			bad = rate
			cs.Limit = fmt.Sprintf("at %s req/s: %s", report.Rate(float64(rate)), why)
		}
		switch {
		case bad == 0:
			rate *= 2
		case bad-good <= max(bad/20, 1):
			cs.MaxRate = float64(good)
			return cs
		default:
			rate = (good + bad) / 2
		}
		time.Sleep(time.Second) // let queues drain between steps
	}
	cs.MaxRate = float64(good)
	return cs
}

// measuredAttack is attack plus the CPU the server and this process used.
func measuredAttack(ctx context.Context, s *server, url string, rate int, d, p99 time.Duration) (report.CapacityStep, string, error) {
	srvBefore, err := s.stat()
	if err != nil {
		return report.CapacityStep{}, "", err
	}
	selfBefore, err := readProcStat(os.Getpid())
	if err != nil {
		return report.CapacityStep{}, "", err
	}
	start := time.Now()
	st, why := attack(ctx, url, rate, d, p99)
	wall := time.Since(start).Seconds()
	srvAfter, err := s.stat()
	if err != nil {
		return st, why, err
	}
	selfAfter, err := readProcStat(os.Getpid())
	if err != nil {
		return st, why, err
	}
	st.ServerCPU = (srvAfter.cpu - srvBefore.cpu).Seconds() / wall
	st.LoadCPU = (selfAfter.cpu - selfBefore.cpu).Seconds() / wall
	return st, why, nil
}

// loadCores is how many CPUs this process may run on.
func loadCores() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	return set.Count()
}

// attack sends rate requests per second for d and says why the step missed
// the objective (p99 at most p99, no errors, throughput at least 95 % of the
// rate), or "" when it met it; p99 = 0 sets no latency objective.
func attack(ctx context.Context, url string, rate int, d, p99 time.Duration) (report.CapacityStep, string) {
	// The transport is ours, so that its connections can be closed after
	// the attack instead of lingering in the runner, one descriptor each.
	tr := &http.Transport{DialContext: (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	a := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Timeout(2*time.Second),
		vegeta.KeepAlive(true),
		vegeta.Workers(16),
		vegeta.MaxWorkers(4096),
		// A cap on connections: without it a short stall makes vegeta dial
		// thousands of new connections at once, and the dial storm, not the
		// server, sets the latency. Requests beyond it wait for a
		// connection, and that wait counts in their latency.
		vegeta.Connections(512),
		vegeta.MaxConnections(512),
		vegeta.MaxBody(0), // read and discard bodies instead of keeping them
	)
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url})
	var m vegeta.Metrics
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			a.Stop()
		case <-done:
		}
	}()
	for res := range a.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, d, "bench") {
		m.Add(res)
	}
	close(done)
	m.Close()
	errs := m.Requests - uint64(m.Success*float64(m.Requests)+0.5)
	st := report.CapacityStep{
		Rate: rate, Sent: m.Rate, Achieved: m.Throughput,
		P50US: us(m.Latencies.P50), P90US: us(m.Latencies.P90), P99US: us(m.Latencies.P99),
		P999US: us(m.Latencies.Quantile(0.999)), MaxUS: us(m.Latencies.Max),
		Requests: m.Requests, Errors: errs,
	}
	why := ""
	switch {
	case m.Requests == 0:
		why = "no requests sent"
	case errs > 0:
		why = fmt.Sprintf("%d errors %v %v", errs, m.StatusCodes, m.Errors)
	case p99 > 0 && m.Latencies.P99 > p99:
		why = fmt.Sprintf("p99 %s over %s", report.Latency(st.P99US), p99)
	case m.Throughput < 0.95*float64(rate):
		why = fmt.Sprintf("throughput %s below 95 %% of the rate", report.Rate(m.Throughput))
	}
	st.OK = why == ""
	return st, why
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func okOr(why string) string {
	if why == "" {
		return "ok"
	}
	return why
}

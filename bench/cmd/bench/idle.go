package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
)

// idleSourceIPs is how many loopback source addresses the idle connections
// are spread over: one address has fewer ephemeral ports (about 28,000 in
// Linux's default range) than the largest step needs.
const idleSourceIPs = 4

// idleCurve starts a fresh instance of the server (its first instance has
// been under load, and a Go process keeps memory it once needed), reads its
// resident memory (X = 0), then opens keep-alive connections to it up to
// each target count in turn, makes one request on each and leaves it idle,
// and reads the resident memory again. The connections are reset at the
// end, so no TIME_WAIT is left for the next server.
func idleCurve(ctx context.Context, l launch, name string, targets []int) ([]report.CurvePoint, error) {
	l.logDir = filepath.Join(l.logDir, "idle")
	if err := os.MkdirAll(l.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	s, err := l.start(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.stop() // its exit status does not change what was measured
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // reset instead of TIME_WAIT; an error leaves a normal close
			}
			c.Close()
		}
	}()
	var points []report.CurvePoint
	for _, n := range append([]int{0}, slices.Sorted(slices.Values(targets))...) {
		opened, err := openIdle(ctx, s.addr, len(conns), n-len(conns))
		conns = append(conns, opened...)
		if err != nil {
			return points, fmt.Errorf("open %d idle connections (%d open): %w", n, len(conns), err)
		}
		time.Sleep(2 * time.Second) // let the server settle
		st, err := s.stat()
		if err != nil {
			return points, err
		}
		points = append(points, report.CurvePoint{X: float64(n), RSS: st.rss})
	}
	return points, nil
}

// openIdle opens count connections, numbered from first, each with one
// answered GET /plaintext, 64 at a time.
func openIdle(ctx context.Context, addr string, first, count int) ([]net.Conn, error) {
	if count <= 0 {
		return nil, nil
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				c, err := dialIdle(ctx, addr, i)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	for i := first; i < first+count && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		return conns, fmt.Errorf("%d of %d failed, first: %w", len(errs), count, errs[0])
	}
	return conns, ctx.Err()
}

// dialIdle connects from the i-th connection's loopback source address,
// sends one request and reads its answer.
func dialIdle(ctx context.Context, addr string, i int) (net.Conn, error) {
	src := net.IPv4(127, 0, 0, byte(10+i%idleSourceIPs))
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 1024), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// raiseFileLimit lifts this process's open-file limit towards n, so that it
// and the servers it starts (which inherit it) can hold the idle
// connections, and returns the limit it got: the hard limit, when raising
// that is not allowed (it needs CAP_SYS_RESOURCE).
func raiseFileLimit(n uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur >= n {
		return lim.Cur, nil
	}
	// syscall.Setrlimit, unlike a raw system call, also makes the new limit
	// the one child processes start with.
	want := syscall.Rlimit{Cur: n, Max: max(lim.Max, n)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return n, nil
	}
	want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim.Cur, fmt.Errorf("raise the open-file limit to %d: %w", lim.Max, err)
	}
	return lim.Max, nil
}

// idleTargets keeps the idle-connection counts a server can hold under the
// open-file limit, with room for its other descriptors, and puts the
// largest count that fits in place of those that do not; note says so.
func idleTargets(targets []int, limit uint64) (fit []int, note string) {
	most := (int(limit) - 2048) / 1000 * 1000
	var dropped []string
	for _, n := range targets {
		if n <= most {
			fit = append(fit, n)
		} else {
			dropped = append(dropped, report.Rate(float64(n)))
		}
	}
	if len(dropped) == 0 {
		return fit, ""
	}
	if most > 0 && !slices.Contains(fit, most) {
		fit = append(fit, most)
	}
	return fit, fmt.Sprintf("%s idle connections were not measured: the open-file limit here is %d and could not be "+
		"raised (raising the hard limit needs CAP_SYS_RESOURCE), so one process holds at most about %s; "+
		"the curve stops at %s.", strings.Join(dropped, ", "), limit, report.Rate(float64(most)), report.Rate(float64(most)))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
)

// peerNames are the servers under bench/peers, in report order after hotpath.
// The -full peers are Fiber, Gin and net/http doing hotpath's job (request
// id, nosniff, panic recovery, Prometheus metrics, a JSON access-log line
// per request to stdout, hotpath's timeouts); each -full-discard twin writes
// that log to a discarded writer. The others are bare ceilings:
// fasthttp-timeouts is the fasthttp peer with hotpath's default connection
// timeouts, which cost a socket deadline update per request;
// fasthttp-headers the fasthttp peer sending the two headers hotpath puts
// on every answer (X-Content-Type-Options, X-Request-Id).
var peerNames = []string{
	"fiber-full", "fiber-full-discard", "gin-full", "gin-full-discard", "nethttp-full", "nethttp-full-discard",
	"fasthttp", "fasthttp-timeouts", "fasthttp-headers", "nethttp", "gin", "fiber", "gnet",
}

// hotpathTraced is hotpath with tracing on as a production fleet runs it:
// tracing.sample = 0.01, exporting to an OTLP sink in the runner. Its
// req/s against plain hotpath's is the price of tracing.
const hotpathTraced = "hotpath-traced"

// isHotpath reports whether a server is the hotpath binary.
func isHotpath(name string) bool { return name == "hotpath" || report.TracedTwin(name) }

// peerCommand names a peer's package under bench/peers and its extra flags.
func peerCommand(name string) (pkg string, args []string) {
	switch name {
	case "fasthttp-timeouts":
		return "fasthttp", []string{"-timeouts"}
	case "fasthttp-headers":
		return "fasthttp", []string{"-headers"}
	}
	if base, ok := strings.CutSuffix(name, "-full-discard"); ok {
		return base + "full", []string{"-log-discard"}
	}
	if base, ok := strings.CutSuffix(name, "-full"); ok {
		return base + "full", nil
	}
	return name, nil
}

// serves reports whether a server implements an endpoint: gnet is a ceiling
// for the two endpoints without a database, only hotpath has a cache, and
// only hotpath and the full-featured peers serve the API's fortune pages.
func serves(server, endpoint string) bool {
	switch {
	case server == "gnet":
		return endpoint == "plaintext" || endpoint == "plaintext-single" || endpoint == "json"
	case endpoint == "cached-queries":
		return isHotpath(server)
	case strings.HasPrefix(endpoint, "api-fortunes"):
		return isHotpath(server) || report.FullPeer(server)
	}
	return true
}

// server is one running server process under test.
type server struct {
	name  string
	addr  string // application listener, host:port
	admin string // hotpath's admin listener; empty for peers
	// metrics is where the full-featured peers serve /metrics (the other
	// peers are given one too and ignore it).
	metrics string
	cpu     string // the CPU it is pinned to; empty when not pinned
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{} // closed when the process has exited and been reaped
}

// launch describes how to start the servers.
type launch struct {
	hotpath string // bin/hotpath
	config  string // config.toml for hotpath
	binDir  string // built peers
	driver  string
	dsn     string // postgres URL; for sqlite a directory of per-server files
	cpus    string // taskset CPU list for servers; empty means no pinning
	logDir  string
	otlp    string // base URL of the OTLP sink for hotpath-traced
}

// start starts one server pinned to l.cpus with GOMAXPROCS=1 and waits until
// it is ready: hotpath's /readyz on the admin port, a peer's /plaintext.
func (l launch) start(ctx context.Context, name string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, addr: addr, cpu: l.cpus}
	dsn := shortIdlePool(l.dsn)
	if l.driver == "sqlite" {
		// Each server gets its own file: SQLite allows one writer, and
		// hotpath seeds its own schema.
		dsn = filepath.Join(l.dsn, name+".db")
	}
	var argv []string
	if isHotpath(name) {
		if s.admin, err = freeAddr(); err != nil {
			return nil, err
		}
		argv = []string{l.hotpath, "-config", l.config,
			"--server.addr=" + s.addr, "--admin.addr=" + s.admin,
			"--db.driver=" + l.driver, "--db.dsn=" + dsn,
			"--log.access_sample=0", "--shutdown.drain=0s", "--db.conn_max_idle_time=" + poolIdle.String(),
			// hotpath is the only writer here and updates its World cache
			// itself; the periodic reload of all 10,000 Worlds would only
			// add a burst of reads to whatever run it falls into.
			"--db.cache_refresh=0s"}
		if name == hotpathTraced {
			argv = append(argv, "--tracing.endpoint="+l.otlp, "--tracing.sample=0.01")
		}
	} else {
		if s.metrics, err = freeAddr(); err != nil {
			return nil, err
		}
		pkg, extra := peerCommand(name)
		argv = append([]string{filepath.Join(l.binDir, pkg), "-addr", s.addr, "-metrics-addr", s.metrics,
			"-driver", l.driver, "-dsn", dsn}, extra...)
	}
	if l.cpus != "" {
		// taskset execs the server, so the process id stays the server's.
		argv = append([]string{"taskset", "-c", l.cpus}, argv...)
	}
	// Appending, so that trimLog can empty the file under a running
	// server: the full-featured peers log every request.
	if s.log, err = os.OpenFile(filepath.Join(l.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("create log for %s: %w", name, err)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	s.done = make(chan struct{})
	go func() {
		s.cmd.Wait() // the exit status of a server we stop is of no interest
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.cmd.Process.Kill() // it never became ready; nothing to drain
		<-s.done
		s.log.Close()
		return nil, fmt.Errorf("%w; its output ends:\n%s", err, s.logTail())
	}
	return s, nil
}

func (s *server) readyURL() string {
	if s.admin != "" {
		return "http://" + s.admin + "/readyz"
	}
	return "http://" + s.addr + "/plaintext"
}

func (s *server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.readyURL(), nil) // the URL is ours and valid
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body) // drain so the connection is reused
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited before it was ready: %v", s.name, s.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within 60s", s.name, s.readyURL())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits up to ten seconds before killing.
func (s *server) stop() error {
	defer s.log.Close()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill() // it ignored SIGTERM for ten seconds
		<-s.done
		return fmt.Errorf("%s did not stop within 10s of SIGTERM; killed", s.name)
	}
}

// trimLog empties the server's output file once it holds more than 64 MiB
// (the access log of a full-featured peer grows by megabytes a second under
// load); the lines that explain a failure are written after it.
func (s *server) trimLog() error {
	if s.log == nil {
		return nil // a server the runner did not start
	}
	fi, err := s.log.Stat()
	if err != nil {
		return fmt.Errorf("stat output of %s: %w", s.name, err)
	}
	if fi.Size() > 64<<20 {
		if err := s.log.Truncate(0); err != nil {
			return fmt.Errorf("trim output of %s: %w", s.name, err)
		}
	}
	return nil
}

// logTail returns the last lines the server wrote, for error messages (the
// log files live in a temporary directory that is removed at exit).
func (s *server) logTail() string {
	raw, err := os.ReadFile(s.log.Name())
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	const n = 2000
	if len(raw) > n {
		raw = raw[len(raw)-n:]
	}
	return strings.TrimSpace(string(raw))
}

// procStat reads the process's CPU time (user+system) and peak resident set.
type procStat struct {
	cpu     time.Duration
	peakRSS int64 // bytes, VmHWM
	rss     int64 // bytes, VmRSS
}

func (s *server) stat() (procStat, error) {
	return readProcStat(s.cmd.Process.Pid)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTick = 100

func readProcStat(pid int) (procStat, error) {
	var st procStat
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	// The command name (field 2) may contain spaces; fields after its ')'
	// start at field 3, so utime (14) and stime (15) are at 11 and 12.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return st, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	st.cpu = time.Duration(utime+stime) * time.Second / clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		name, rest, _ := strings.Cut(line, ":")
		var field *int64
		switch name {
		case "VmHWM":
			field = &st.peakRSS
		case "VmRSS":
			field = &st.rss
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return st, fmt.Errorf("parse %s %q: %w", name, rest, err)
		}
		*field = kb * 1024
	}
	return st, nil
}

// cpuBusy returns the time the given CPU spent on anything but idling, from
// /proc/stat, in USER_HZ ticks converted to a duration.
func cpuBusy(cpu string) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "cpu"+cpu {
			continue
		}
		var busy int64
		for i, v := range f[1:] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/stat %s: %w", f[0], err)
			}
			// Fields 4 and 5 are idle and iowait; guest time is already
			// part of user time, so stop before it.
			if i != 3 && i != 4 && i < 8 {
				busy += n
			}
		}
		return time.Duration(busy) * time.Second / clockTick, nil
	}
	return 0, fmt.Errorf("no cpu%s line in /proc/stat", cpu)
}

// poolIdle is how long a server keeps an idle database connection. Between
// its runs a server then holds none, so the pools of all the servers (up to
// 8 connections each, and a full run starts 14) stay under PostgreSQL's
// default max_connections of 100, which other clients share.
const poolIdle = 2 * time.Second

// shortIdlePool adds pgxpool's idle settings to a postgres URL: connections
// idle for poolIdle close, checked every second. Any other DSN is returned
// as it is.
func shortIdlePool(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn // the servers report a bad URL themselves
	}
	q := u.Query()
	q.Set("pool_max_conn_idle_time", poolIdle.String())
	q.Set("pool_health_check_period", "1s")
	u.RawQuery = q.Encode()
	return u.String()
}

// freeAddr returns a loopback address with a port the kernel just reported
// free; the server binds it a moment later.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

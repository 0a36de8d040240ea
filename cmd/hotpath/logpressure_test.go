package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
)

// TestBlockedAccessLogNeverSlowsRequests runs the binary with every request
// access-logged to a stdout pipe that nobody reads: once the pipe is full,
// lines must be dropped and counted, and requests must stay fast.
func TestBlockedAccessLogNeverSlowsRequests(t *testing.T) {
	dir := t.TempDir()
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdoutR.Close() // held open and never read, so writes block
	stderr := &testenv.Buffer{}
	cmd := exec.Command(binary, "-config", filepath.Join(dir, "none.toml"),
		"--server.addr=127.0.0.1:0", "--admin.addr=127.0.0.1:0", "--db.dsn="+filepath.Join(dir, "hotpath.db"),
		"--shutdown.drain=0s", "--log.access_sample=1", "--log.access_buffer=16")
	if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderr
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutW.Close()
	p := &proc{cmd: cmd, stderr: stderr, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, 20*time.Second, "serving", func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var l struct {
				Msg       string `json:"msg"`
				Addr      string `json:"addr"`
				AdminAddr string `json:"admin_addr"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving" {
				p.app, p.admin = "http://"+l.Addr, "http://"+l.AdminAddr
				return true
			}
		}
		return false
	})

	const clients, perClient = 4, 1000
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			conn, err := net.Dial("tcp", appAddr(p))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			mine := make([]time.Duration, 0, perClient)
			for range perClient {
				start := time.Now()
				if _, err := conn.Write([]byte("GET /plaintext HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("u", 200) + "\r\n\r\n")); err != nil {
					t.Error(err)
					return
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if err := readPlaintext(r); err != nil {
					t.Errorf("with the access log blocked: %v", err)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(lat) != clients*perClient {
		t.Fatalf("%d of %d requests answered", len(lat), clients*perClient)
	}
	slices.Sort(lat)
	dropped := metricValue(t, p, "access_log_dropped_total")
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("%d requests with stdout blocked: p50 %s p99 %s, %.0f access lines dropped", len(lat), p50, p99, dropped)
	// A 64 KiB pipe holds a few hundred ~400-byte lines, the queue 16 more.
	if dropped < float64(len(lat)-1000) {
		t.Errorf("access_log_dropped_total %.0f after %d logged requests into a blocked pipe, want nearly all dropped", dropped, len(lat))
	}
	if p99 > 50*time.Millisecond {
		t.Errorf("p99 %s with the access log blocked, want under 50ms: the log sink must not slow requests", p99)
	}
	if resp, _ := get(t, "GET", p.admin+"/healthz"); resp.StatusCode != 200 {
		t.Errorf("/healthz %d with the access log blocked", resp.StatusCode)
	}
}

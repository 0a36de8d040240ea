package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port nobody listens on now. Prefork children
// must share a fixed port: with port 0 each would pick its own.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// childrenOf lists the pids whose parent is pid.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state ppid ...
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// startPrefork starts a prefork master and waits until its 2 children serve.
// Both must have logged "serving": a child that exists but is still
// starting neither answers nor catches signals yet.
func startPrefork(t *testing.T, args ...string) *proc {
	t.Helper()
	app, adm := freePort(t), freePort(t)
	p := startProcNoWait(t, append([]string{"--server.prefork=true",
		fmt.Sprintf("--server.addr=127.0.0.1:%d", app), fmt.Sprintf("--admin.addr=127.0.0.1:%d", adm)}, args...)...)
	p.app, p.admin = fmt.Sprintf("http://127.0.0.1:%d", app), fmt.Sprintf("http://127.0.0.1:%d", adm)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.stderr.String(), `"msg":"serving"`) < 2 || !answers(p.app+"/plaintext") {
		if time.Now().After(deadline) {
			t.Fatalf("prefork did not start 2 serving children in 20s:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

func TestPreforkServesFromChildrenAndDrainsOnSIGTERM(t *testing.T) {
	p := startPrefork(t)
	// A new connection per request: SO_REUSEPORT spreads connections, not
	// requests, across the children.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := map[string]bool{}
	for range 40 {
		resp, err := fresh.Get(p.app + "/json")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != `{"message":"Hello, World!"}` {
			t.Fatalf("GET /json via prefork: %d %q %v", resp.StatusCode, body, err)
		}
		// The id prefix is per process, so it tells which child answered.
		seen[strings.SplitN(resp.Header.Get("X-Request-Id"), "-", 2)[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("40 connections were answered by %d processes, want both children", len(seen))
	}
	if resp, _ := get(t, "GET", p.admin+"/readyz"); resp.StatusCode != 200 {
		t.Errorf("admin /readyz via prefork: %d", resp.StatusCode)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("master exit status %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
	if n := strings.Count(p.stderr.String(), `"msg":"stopped"`); n != 2 {
		t.Errorf("%d children logged a clean stop, want 2:\n%s", n, p.stderr.String())
	}
}

func answers(url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// TestPreforkDrainsOnAProcessGroupSignal: Ctrl-C or systemd signal the
// whole group, so each child gets the signal directly and again from the
// master; that is one request to drain, not a second signal.
func TestPreforkDrainsOnAProcessGroupSignal(t *testing.T) {
	p := startPrefork(t, "--shutdown.drain=300ms")
	for _, pid := range append(childrenOf(t, p.cmd.Process.Pid), p.cmd.Process.Pid) {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("master exit status %d after a group SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
	if n := strings.Count(p.stderr.String(), `"msg":"stopped"`); n != 2 || strings.Contains(p.stderr.String(), "second signal") {
		t.Errorf("%d children stopped cleanly (want 2), or one took the copy for a second signal:\n%s", n, p.stderr.String())
	}
}

// TestPreforkPassesSIGHUPToChildren: the master serves nothing, so it
// hands SIGHUP on; each child reloads its own configuration.
func TestPreforkPassesSIGHUPToChildren(t *testing.T) {
	p := startPrefork(t, "--reload.watch=false")
	p.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(p.stderr.String(), `"msg":"config reloaded","trigger":"SIGHUP"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("2 children did not log a SIGHUP reload within 5s:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !answers(p.app + "/plaintext") {
		t.Errorf("prefork stopped serving after SIGHUP")
	}
	if strings.Contains(p.stderr.String(), "need a restart") {
		t.Errorf("an unchanged configuration reloaded with keys that need a restart (the children's reuse_port?):\n%s", p.stderr.String())
	}
	p.stop(t)
	if n := strings.Count(p.stderr.String(), `"msg":"stopped"`); n != 2 {
		t.Errorf("%d children stopped cleanly after the reload, want 2:\n%s", n, p.stderr.String())
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
)

// binary is the hotpath executable built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hotpath-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hotpath")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hotpath:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running hotpath process on loopback ports it chose itself.
type proc struct {
	cmd    *exec.Cmd
	app    string // http://127.0.0.1:port
	admin  string
	stdout *testenv.Buffer // access log
	stderr *testenv.Buffer // application log
	exited chan error
}

// startProc runs the binary with a fresh working directory and extra args,
// and waits until it logs its listening addresses.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p, addrs := launch(t, args...)
	return waitServing(t, p, addrs)
}

// waitServing waits until a launched process logs its listening addresses.
func waitServing(t *testing.T, p *proc, addrs chan [2]string) *proc {
	t.Helper()
	select {
	case a := <-addrs:
		p.app, p.admin = "http://"+a[0], "http://"+a[1]
	case err := <-p.exited:
		t.Fatalf("hotpath exited before serving: %v\n%s", err, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("hotpath did not start in 20s:\n%s", p.stderr.String())
	}
	return p
}

// startProcNoWait runs the binary like startProc without waiting for it.
func startProcNoWait(t *testing.T, args ...string) *proc {
	t.Helper()
	p, _ := launch(t, args...)
	return p
}

// launch starts the binary and reports the addresses it logs as serving.
func launch(t *testing.T, args ...string) (*proc, chan [2]string) {
	t.Helper()
	dir := t.TempDir()
	base := []string{
		"-config", filepath.Join(dir, "none.toml"),
		"--server.addr=127.0.0.1:0", "--admin.addr=127.0.0.1:0",
		"--db.dsn=" + filepath.Join(dir, "hotpath.db"),
		"--shutdown.drain=100ms", // tests that study the drain set their own
	}
	if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return launchIn(t, dir, append(base, args...))
}

// launchIn starts the binary in dir with exactly args, without launch's
// defaults, and reports the addresses it logs as serving.
func launchIn(t *testing.T, dir string, args []string) (*proc, chan [2]string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	p := &proc{cmd: cmd, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout = p.stdout
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(p.stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exited <- cmd.Wait()
		pw.Close()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // already exited in most tests
	})
	addrs := make(chan [2]string, 4)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct {
				Msg       string `json:"msg"`
				Addr      string `json:"addr"`
				AdminAddr string `json:"admin_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				select {
				case addrs <- [2]string{line.Addr, line.AdminAddr}:
				default: // prefork: several children serve
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return p, addrs
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("hotpath still running after %s:\n%s", timeout, p.stderr.String())
		return -1
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, p.stderr.String())
	}
}

// client is the tests' HTTP client; with HOTPATH_TEST_EXCHANGES set it records
// every /api/v1 exchange there, for the OpenAPI conformance check
// (internal/openapi/check).
var client = &http.Client{Timeout: 10 * time.Second, Transport: exchangeRecorder(http.DefaultTransport)}

// get fetches url with optional header pairs and returns the response and body.
func get(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	return send(t, method, url, "", headers...)
}

// send makes one request with a body and header pairs and returns the
// response and its body.
func send(t *testing.T, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

// runExit runs the binary to completion and returns its exit code and output.
func runExit(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	close(done)
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// accessLines parses the access log written so far.
func accessLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

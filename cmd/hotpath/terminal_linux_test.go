package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: what the process writes to the
// terminal end is read from the controlling end.
func openPTY(t *testing.T) (control, term *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { control.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, control.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock pty: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, control.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("pty number: %v", errno)
	}
	term, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { term.Close() })
	return control, term
}

// TestCtrlCAtTerminalSaysItDrains: SIGINT with stderr on a terminal prints
// one plain line saying how long the drain and the stop take; with stderr
// on a pipe (a log collector) only the JSON log line says it.
func TestCtrlCAtTerminalSaysItDrains(t *testing.T) {
	const want = "hotpath: draining for 300ms (shutdown.drain), then stopping within 2s (shutdown.timeout); Ctrl-C again exits at once"
	control, term := openPTY(t)
	dir := t.TempDir()
	cmd := exec.Command(binary, "-config", filepath.Join(dir, "none.toml"),
		"--server.addr=127.0.0.1:0", "--admin.addr=127.0.0.1:0", "--db.dsn="+filepath.Join(dir, "hotpath.db"),
		"--shutdown.drain=300ms", "--shutdown.timeout=2s")
	if err := os.WriteFile(filepath.Join(dir, "none.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Dir = dir
	cmd.Stderr = term
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	term.Close() // the child holds its own copy

	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(control)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(lines)
	}()
	next := func(what string) []string {
		var seen []string
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("terminal closed before %s; saw:\n%s", what, strings.Join(seen, "\n"))
				}
				seen = append(seen, l)
				if strings.Contains(l, what) {
					return seen
				}
			case <-deadline:
				t.Fatalf("no %s within 20s; saw:\n%s", what, strings.Join(seen, "\n"))
			}
		}
	}
	next(`"msg":"serving"`)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	seen := next(`"msg":"stopped"`)
	count := 0
	for _, l := range seen {
		if l == want {
			count++
		}
	}
	if count != 1 {
		t.Errorf("want the line %q once on the terminal, saw:\n%s", want, strings.Join(seen, "\n"))
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after Ctrl-C: %v, want status 0", err)
	}

	// On a pipe, SIGINT drains silently apart from the JSON log.
	p := startProc(t)
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit after SIGINT on a pipe: %d, want 0", code)
	}
	if strings.Contains(p.stderr.String(), "hotpath: draining") {
		t.Errorf("stderr is a pipe, yet the terminal notice was written:\n%s", p.stderr.String())
	}
}

package testenv

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every connection by sending back what it reads.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip sends msg through addr and returns what came back within d.
func roundTrip(addr, msg string, d time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err = io.ReadFull(c, buf)
	return string(buf), err
}

func TestProxyModes(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	timeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	check := func(mode Mode, wantEcho bool, wantErr func(error) bool) {
		t.Helper()
		p.SetMode(mode)
		start := time.Now()
		got, err := roundTrip(p.Addr(), "ping", 300*time.Millisecond)
		switch {
		case wantEcho && (err != nil || got != "ping"):
			t.Errorf("mode %d: got %q, %v; want echo", mode, got, err)
		case !wantEcho && (err == nil || !wantErr(err)):
			t.Errorf("mode %d: got %q, %v after %v; want a matching error", mode, got, err, time.Since(start))
		}
	}
	refused := func(err error) bool { return strings.Contains(err.Error(), "refused") }
	reset := func(err error) bool {
		return errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset")
	}
	check(Pass, true, nil)
	check(Blackhole, false, timeout)
	check(Reset, false, reset)
	check(Refuse, false, refused)
	check(Pass, true, nil)
}

func TestProxyBlackholeSilencesOpenConnection(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("a1")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "a1" {
		t.Fatalf("before blackhole: got %q, %v", buf, err)
	}
	p.SetMode(Blackhole)
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("b2")); err != nil {
		t.Fatalf("write into blackhole: %v (want it to be swallowed silently)", err)
	}
	var ne net.Error
	if n, err := io.ReadFull(c, buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read through blackhole: %d bytes, %v; want a timeout", n, err)
	}
	p.Cut()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(buf); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("after Cut: %v; want the connection ended", err)
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("after Cut the proxy holds %d connections, want 0", n)
	}
}

func TestPostgresDSNCreatesAndDropsDatabase(t *testing.T) {
	var dsn string
	t.Run("inner", func(t *testing.T) {
		dsn = PostgresDSN(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to %s: %v", dsn, err)
		}
		defer conn.Close(ctx)
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil || !strings.HasPrefix(name, "hotpath_t_") {
			t.Fatalf("current_database() = %q, %v; want hotpath_t_...", name, err)
		}
	})
	if dsn == "" {
		t.Skip("inner test skipped")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, os.Getenv(PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still exists after the test (count %d, err %v)", u.Path, n, err)
	}
}

func TestWithDatabaseKeepsCredentials(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://u:p@127.0.0.1:5432/test?sslmode=disable", "postgres://u:p@127.0.0.1:5432/x?sslmode=disable"},
		{"host=127.0.0.1 user=u dbname=test", "host=127.0.0.1 user=u dbname=test dbname=x"},
	} {
		if got := withDatabase(t, c.in, "x"); got != c.want {
			t.Errorf("withDatabase(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := ReplaceHost(t, "postgres://u@127.0.0.1:5432/d", "127.0.0.1:1"); got != "postgres://u@127.0.0.1:1/d" {
		t.Errorf("ReplaceHost = %q", got)
	}
}

func TestSkipNotesWhyForTheSummary(t *testing.T) {
	notes := filepath.Join(t.TempDir(), "skips")
	t.Setenv(SkipsEnv, notes)
	ran := false
	for _, reason := range []string{"chromium is not installed", "two\tparts\nand lines"} {
		inner := t.Run("inner", func(t *testing.T) {
			Skip(t, "browser tests", reason)
			ran = true
		})
		if !inner || ran {
			t.Fatalf("Skip(%q): the inner test went on (passed %v, ran on %v)", reason, inner, ran)
		}
	}
	got, err := os.ReadFile(notes)
	if err != nil {
		t.Fatal(err)
	}
	want := "browser tests\tchromium is not installed\nbrowser tests\ttwo parts and lines\n"
	if string(got) != want {
		t.Errorf("notes = %q, want %q", got, want)
	}
}

// Package peers_test starts each peer server as a real process and checks
// that it answers the TechEmpower endpoints the way hotpath must.
package peers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/bench/internal/testskip"
	"github.com/hotpath/hotpath/bench/internal/tfb"
)

var dbPeers = []string{"fasthttp", "nethttp", "gin", "fiber"}

// testDSN creates a private database seeded with the standard rows, dropped
// when the test ends, because other tests use the same server concurrently.
func testDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HOTPATH_TEST_POSTGRES_DSN")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but HOTPATH_TEST_POSTGRES_DSN is not set")
		}
		testskip.Skip(t, "PostgreSQL tests", "HOTPATH_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", base, err)
	}
	name := fmt.Sprintf("bench_peers_%d", rand.Uint64())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db, err := tfb.Open(ctx, "postgres", u.String(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// startPeer builds and starts a peer on a free loopback port and stops it
// with SIGTERM when the test ends.
func startPeer(t *testing.T, name string, args ...string) string {
	t.Helper()
	return launchPeer(t, name, args...).base
}

// peerProc is a running peer: its app URL, its metrics URL (full-featured
// peers) and what it wrote to stdout.
type peerProc struct {
	base, metrics string
	stdout        *syncBuffer
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// launchPeer is startPeer returning the whole peerProc.
func launchPeer(t *testing.T, name string, args ...string) *peerProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	addr, metrics := freePort(t), freePort(t)
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-metrics-addr", metrics}, args...)...)
	p := &peerProc{base: "http://" + addr, metrics: "http://" + metrics, stdout: &syncBuffer{}}
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = p.stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s ignored SIGTERM for 10s", name)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/plaintext"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", name, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	jsonType = regexp.MustCompile(`^application/json(; ?charset=(UTF|utf)-8)?$`)
	textType = regexp.MustCompile(`^text/plain(; ?charset=(UTF|utf)-8)?$`)
	htmlType = regexp.MustCompile(`^text/html; ?charset=(UTF|utf)-8$`)
)

// get fetches a path and checks the status, the headers every TechEmpower
// answer needs and the content type.
func get(t *testing.T, base, path string, wantType *regexp.Regexp) []byte {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %q", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !wantType.MatchString(ct) {
		t.Errorf("GET %s: Content-Type %q, want %s", path, ct, wantType)
	}
	if resp.Header.Get("Server") == "" {
		t.Errorf("GET %s: no Server header", path)
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Errorf("GET %s: Date %q: %v", path, resp.Header.Get("Date"), err)
	}
	if resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 {
		t.Errorf("GET %s: neither Content-Length nor Transfer-Encoding", path)
	}
	return body
}

func checkHello(t *testing.T, base string) {
	t.Helper()
	if got := string(get(t, base, "/plaintext", textType)); got != "Hello, World!" {
		t.Errorf("/plaintext body %q", got)
	}
	var msg map[string]any
	body := get(t, base, "/json", jsonType)
	if err := json.Unmarshal(body, &msg); err != nil || len(msg) != 1 || msg["message"] != "Hello, World!" {
		t.Errorf("/json body %s (err %v), want exactly {\"message\":\"Hello, World!\"}", body, err)
	}
}

func decodeWorlds(t *testing.T, path string, body []byte, array bool) []tfb.World {
	t.Helper()
	var raw []map[string]json.Number
	if !array {
		raw = make([]map[string]json.Number, 1)
		body = []byte("[" + string(body) + "]")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("%s: body %s: %v", path, body, err)
	}
	worlds := make([]tfb.World, len(raw))
	for i, m := range raw {
		id, err1 := m["id"].Int64()
		rn, err2 := m["randomNumber"].Int64()
		if len(m) != 2 || err1 != nil || err2 != nil || id < 1 || id > 10000 || rn < 1 || rn > 10000 {
			t.Fatalf("%s: element %d = %v, want {id, randomNumber} integers in 1..10000", path, i, m)
		}
		worlds[i] = tfb.World{ID: int32(id), RandomNumber: int32(rn)}
	}
	return worlds
}

func checkDB(t *testing.T, base, dsn string) {
	t.Helper()
	decodeWorlds(t, "/db", get(t, base, "/db", jsonType), false)
	for q, want := range map[string]int{"2": 2, "0": 1, "foo": 1, "501": 500, "": 1, "-3": 1} {
		path := "/queries?queries=" + q
		if got := len(decodeWorlds(t, path, get(t, base, path, jsonType), true)); got != want {
			t.Errorf("%s: %d worlds, want %d", path, got, want)
		}
	}

	updated := decodeWorlds(t, "/updates", get(t, base, "/updates?queries=20", jsonType), true)
	if len(updated) != 20 {
		t.Fatalf("/updates?queries=20: %d worlds", len(updated))
	}
	checkStored(t, dsn, updated)

	page := string(get(t, base, "/fortunes", htmlType))
	checkFortunes(t, page)
}

// checkStored reads back each updated row that appeared once in the answer
// (a repeated id keeps only one of its new values).
func checkStored(t *testing.T, dsn string, worlds []tfb.World) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	seen := map[int32]int{}
	for _, w := range worlds {
		seen[w.ID]++
	}
	for _, w := range worlds {
		if seen[w.ID] > 1 {
			continue
		}
		var stored int32
		if err := conn.QueryRow(ctx, "SELECT randomNumber FROM World WHERE id = $1", w.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != w.RandomNumber {
			t.Errorf("/updates answered world %d = %d, database holds %d", w.ID, w.RandomNumber, stored)
		}
	}
}

var row = regexp.MustCompile(`<tr><td>(\d+)</td><td>([^<]*)</td></tr>`)

func checkFortunes(t *testing.T, page string) {
	t.Helper()
	for _, want := range []string{"<!DOCTYPE html>", "<title>Fortunes</title>", "<th>id</th><th>message</th>",
		"&lt;script&gt;", "フレームワークのベンチマーク", "UNIX. — Tom"} {
		if !strings.Contains(page, want) {
			t.Errorf("/fortunes lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Errorf("/fortunes did not escape the script fortune")
	}
	rows := row.FindAllStringSubmatch(page, -1)
	if len(rows) != 13 {
		t.Fatalf("/fortunes has %d rows, want 13:\n%s", len(rows), page)
	}
	var messages []string
	for _, r := range rows {
		messages = append(messages, r[2])
	}
	if rows[5][1] != "0" || rows[5][2] != tfb.ExtraFortune {
		t.Errorf("row 6 = %v, want the request-time fortune with id 0", rows[5][1:])
	}
	// Escaping keeps the order of the raw messages here: the only escaped
	// row starts with '<', which sorts first either way.
	if !slices.IsSorted(messages[1:]) {
		t.Errorf("/fortunes rows not sorted by message: %q", messages)
	}
}

func TestPeersAnswerEndpointsOnPostgres(t *testing.T) {
	dsn := testDSN(t)
	for _, name := range dbPeers {
		t.Run(name, func(t *testing.T) {
			base := startPeer(t, name, "-driver", "postgres", "-dsn", dsn)
			checkHello(t, base)
			checkDB(t, base, dsn)
		})
	}
}

func TestFasthttpPeerRunsOnSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.db")
	base := startPeer(t, "fasthttp", "-driver", "sqlite", "-dsn", path)
	checkHello(t, base)
	decodeWorlds(t, "/db", get(t, base, "/db", jsonType), false)
	if got := len(decodeWorlds(t, "/updates", get(t, base, "/updates?queries=5", jsonType), true)); got != 5 {
		t.Errorf("/updates?queries=5 gave %d worlds", got)
	}
	checkFortunes(t, string(get(t, base, "/fortunes", htmlType)))
}

// The fasthttp peer with -headers does hotpath's per-answer header work:
// nosniff, a safe incoming X-Request-Id echoed, anything else replaced by a
// fresh id.
func TestFasthttpHeadersPeerSendsHotpathHeaders(t *testing.T) {
	base := startPeer(t, "fasthttp", "-headers", "-driver", "sqlite", "-dsn", filepath.Join(t.TempDir(), "bench.db"))
	checkHello(t, base)
	send := func(id string) http.Header { return sendWithID(t, base, id) }
	if got := send("abc-123").Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("valid id answered with %q, want it echoed", got)
	}
	seen := map[string]bool{}
	for _, in := range []string{"", "", "has space", strings.Repeat("a", 129)} {
		got := send(in).Get("X-Request-Id")
		if got == "" || got == in || seen[got] {
			t.Errorf("id %q answered with %q, want a fresh id", in, got)
		}
		seen[got] = true
	}
}

// sendWithID gets /plaintext with X-Request-Id set to id (none when empty),
// checks the answer carries nosniff and returns its headers.
func sendWithID(t *testing.T, base, id string) http.Header {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/plaintext", nil)
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
	return resp.Header
}

func TestGnetPeerServesPipelinedRequests(t *testing.T) {
	base := startPeer(t, "gnet")
	checkHello(t, base)
	resp, err := http.Get(base + "/db")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/db: status %d, want 404 (gnet serves no database endpoints)", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	const req = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(conn, req+req+req); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	for i := range 3 {
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "Hello, World!" {
			t.Errorf("pipelined response %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

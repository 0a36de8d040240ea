package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotpath/hotpath/internal/testenv"
)

// driverCase runs one database-backed hotpath and can open the same
// database directly to check what the server stored.
type driverCase struct {
	name string
	args func(t *testing.T) []string
}

func drivers() []driverCase {
	return []driverCase{
		{
			name: "sqlite",
			args: func(t *testing.T) []string {
				return []string{"--db.driver=sqlite", "--db.dsn=" + filepath.Join(t.TempDir(), "hotpath.db")}
			},
		},
		{
			name: "postgres",
			args: func(t *testing.T) []string {
				return []string{"--db.driver=postgres", "--db.dsn=" + testenv.PostgresDSN(t)}
			},
		},
	}
}

// forEachDriver runs fn against a fresh hotpath on each driver, with a
// direct handle on its database.
func forEachDriver(t *testing.T, fn func(t *testing.T, p *proc, db database)) {
	for _, d := range drivers() {
		t.Run(d.name, func(t *testing.T) {
			args := d.args(t)
			p := startProc(t, args...)
			defer p.stop(t)
			waitReady(t, p)
			var cfg struct{ driver, dsn string }
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--db.driver="); ok {
					cfg.driver = v
				}
				if v, ok := strings.CutPrefix(a, "--db.dsn="); ok {
					cfg.dsn = v
				}
			}
			direct := openDirect(t, cfg.driver, cfg.dsn)
			fn(t, p, direct)
		})
	}
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, _ := get(t, "GET", p.admin+"/readyz"); resp.StatusCode == 200 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not ready after 20s:\n%s", p.stderr.String())
}

type world struct {
	ID           int `json:"id"`
	RandomNumber int `json:"randomNumber"`
}

// decodeWorlds checks a JSON answer holds only id and randomNumber, in range.
func decodeWorlds(t *testing.T, what, body string, array bool) []world {
	t.Helper()
	var raw []map[string]any
	if array {
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatalf("%s: body %q is not a JSON array: %v", what, body, err)
		}
	} else {
		var one map[string]any
		if err := json.Unmarshal([]byte(body), &one); err != nil {
			t.Fatalf("%s: body %q is not a JSON object: %v", what, body, err)
		}
		raw = []map[string]any{one}
	}
	out := make([]world, 0, len(raw))
	for _, m := range raw {
		id, ok1 := m["id"].(float64)
		rn, ok2 := m["randomNumber"].(float64)
		if !ok1 || !ok2 || len(m) != 2 || id != float64(int(id)) || rn != float64(int(rn)) {
			t.Fatalf("%s: element %v is not {id, randomNumber} integers", what, m)
		}
		if id < 1 || id > 10000 || rn < 1 || rn > 10000 {
			t.Errorf("%s: element %v out of 1..10000", what, m)
		}
		out = append(out, world{int(id), int(rn)})
	}
	return out
}

func TestDBEndpoints(t *testing.T) {
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		resp, body := get(t, "GET", p.app+"/db")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Server") == "" || resp.Header.Get("Date") == "" {
			t.Fatalf("/db: %d %v", resp.StatusCode, resp.Header)
		}
		w := decodeWorlds(t, "/db", body, false)[0]
		stored, err := db.World(context.Background(), int32(w.ID))
		if err != nil || int(stored.RandomNumber) != w.RandomNumber {
			t.Errorf("/db answered %v, database holds %v (%v)", w, stored, err)
		}

		counts := []struct {
			param string
			want  int
		}{
			{"2", 2}, {"0", 1}, {"foo", 1}, {"501", 500}, {"", 1}, {"-1", 1},
			{"1.5", 1}, {"+3", 1}, {"20abc", 1}, {"99999999999999999999", 500}, {"500", 500}, {"1", 1},
			{"1;DROP TABLE World--", 1}, {"' OR '1'='1", 1},
		}
		for _, ep := range []struct{ path, param string }{{"/queries", "queries"}, {"/updates", "queries"}, {"/cached-queries", "count"}} {
			for _, c := range counts {
				url := fmt.Sprintf("%s%s?%s=%s", p.app, ep.path, ep.param, strings.ReplaceAll(c.param, " ", "%20"))
				resp, body := get(t, "GET", url)
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s?%s=%q: %d %q", ep.path, ep.param, c.param, resp.StatusCode, body)
					continue
				}
				if got := decodeWorlds(t, ep.path, body, true); len(got) != c.want {
					t.Errorf("%s?%s=%q: %d worlds, want %d", ep.path, ep.param, c.param, len(got), c.want)
				}
			}
			resp, body := get(t, "GET", p.app+ep.path)
			if got := decodeWorlds(t, ep.path, body, true); resp.StatusCode != 200 || len(got) != 1 {
				t.Errorf("%s without the parameter: %d, %d worlds, want 1", ep.path, resp.StatusCode, len(got))
			}
		}
		if n, err := db.AllWorlds(context.Background(), nil); err != nil || len(n) != 10000 {
			t.Errorf("World has %d rows after hostile parameters (%v), want 10000", len(n), err)
		}
	})
}

func TestUpdatesStoreWhatTheyAnswer(t *testing.T) {
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		before, err := db.AllWorlds(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, body := get(t, "GET", p.app+"/updates?queries=501")
		answered := decodeWorlds(t, "/updates", body, true)
		if len(answered) != 500 {
			t.Fatalf("/updates?queries=501 answered %d worlds, want 500", len(answered))
		}
		after, err := db.AllWorlds(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i := range before {
			if before[i].RandomNumber != after[i].RandomNumber {
				changed++
			}
		}
		if changed < 476 {
			t.Errorf("%d rows changed by 500 updates, TechEmpower wants at least 476", changed)
		}
		for _, w := range answered {
			if got := after[w.ID-1]; int(got.RandomNumber) != w.RandomNumber {
				t.Errorf("answered %v but the database holds %v", w, got)
			}
		}
		// The cache follows changes made through this process.
		for range 5 {
			_, body := get(t, "GET", p.app+"/cached-queries?count=500")
			for _, w := range decodeWorlds(t, "/cached-queries", body, true) {
				stored, err := db.World(ctx, int32(w.ID))
				if err != nil || int(stored.RandomNumber) != w.RandomNumber {
					t.Fatalf("cached %v, database %v (%v)", w, stored, err)
				}
			}
		}
	})
}

func TestConcurrentUpdatesNeitherDeadlockNorLoseWrites(t *testing.T) {
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		last := map[int]int{}
		failures := 0
		for g := range 8 {
			wg.Go(func() {
				for range 15 {
					resp, body := get(t, "GET", p.app+"/updates?queries=20")
					if resp.StatusCode != 200 {
						mu.Lock()
						failures++
						mu.Unlock()
						continue
					}
					_ = g
					mu.Lock()
					for _, w := range decodeWorlds(t, "/updates", body, true) {
						last[w.ID] = w.RandomNumber
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if failures > 0 {
			t.Errorf("%d of 120 concurrent /updates failed", failures)
		}
		// Every row now holds some value an /updates answered for it.
		for id := range last {
			if _, err := db.World(context.Background(), int32(id)); err != nil {
				t.Errorf("read back world %d: %v", id, err)
			}
		}
	})
}

var fortuneRow = regexp.MustCompile(`<tr><td>(\d+)</td><td>([^<]*)</td></tr>`)

func TestFortunesPage(t *testing.T) {
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		resp, body := get(t, "GET", p.app+"/fortunes")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("/fortunes: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		want := []struct {
			id  string
			msg string
		}{
			{"11", `<script>alert("This should not be displayed in a browser alert box.");</script>`},
			{"4", "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"},
			{"5", "A computer program does what you tell it to do, not what you want it to do."},
			{"2", "A computer scientist is someone who fixes things that aren't broken."},
			{"8", "A list is only as strong as its weakest link. — Donald Knuth"},
			{"0", "Additional fortune added at request time."},
			{"3", "After enough decimal places, nobody gives a damn."},
			{"7", "Any program that runs right is obsolete."},
			{"10", "Computers make very fast, very accurate mistakes."},
			{"6", "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"},
			{"9", "Feature: A bug with seniority."},
			{"1", "fortune: No such file or directory"},
			{"12", "フレームワークのベンチマーク"},
		}
		rows := fortuneRow.FindAllStringSubmatch(body, -1)
		if len(rows) != len(want) {
			t.Fatalf("/fortunes has %d rows, want %d:\n%s", len(rows), len(want), body)
		}
		for i, r := range rows {
			if r[1] != want[i].id || html.UnescapeString(r[2]) != want[i].msg {
				t.Errorf("row %d = (%s, %q), want (%s, %q)", i, r[1], html.UnescapeString(r[2]), want[i].id, want[i].msg)
			}
		}
		for _, must := range []string{"<!DOCTYPE html>", "<title>Fortunes</title>", "<th>id</th><th>message</th>", "— Donald Knuth", "フレームワークのベンチマーク", "&lt;script&gt;"} {
			if !strings.Contains(body, must) {
				t.Errorf("/fortunes lacks %q", must)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "&#8212;") {
			t.Errorf("/fortunes carries a raw script tag or a numeric em dash")
		}
	})
}

// TestHeadUpdatesWritesNothing: /updates changes Worlds on GET, as the
// benchmark rules define it; a HEAD (a link checker, a monitor) is refused.
func TestHeadUpdatesWritesNothing(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	resp, _ := get(t, "HEAD", p.app+"/updates?queries=20")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("HEAD /updates: %d, Allow %q, want 405 with Allow: GET, OPTIONS", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if v := metricValue(t, p, `http_requests_total{route="unmatched",method="HEAD",code="405"}`); v != 1 {
		t.Errorf("HEAD /updates counted %v times as refused, want 1", v)
	}
	if resp, _ := get(t, "GET", p.app+"/updates?queries=1"); resp.StatusCode != 200 {
		t.Errorf("GET /updates: %d, want 200", resp.StatusCode)
	}
}

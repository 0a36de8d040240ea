package peers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fullPeer says how a full-featured peer's metrics name a request: the
// counter family and the labels holding the route template and status.
type fullPeer struct {
	name string
	// counter is a regular expression, with %s for the route label's value
	// and %s for the status, matching the sample that counts requests.
	counter string
	// route turns a path into the value of the route label.
	route func(path string) string
}

var fullPeers = []fullPeer{
	{
		name:    "fiberfull",
		counter: `http_requests_total\{method="GET",path="%s",service="fiber-full",status_code="%s"\} (\d+)`,
		route:   func(p string) string { return p },
	},
	{
		// go-http-metrics counts requests as the histogram's _count.
		name:    "ginfull",
		counter: `http_request_duration_seconds_count\{code="%[2]s",handler="%[1]s",method="GET",service=""\} (\d+)`,
		route:   func(p string) string { return p },
	},
	{
		name:    "nethttpfull",
		counter: `http_requests_total\{code="%[2]s",method="get",route="%[1]s"\} (\d+)`,
		route:   func(p string) string { return "GET " + p },
	},
}

// TestFullPeersDoHotpathsJob checks that each full-featured peer answers
// the benchmark routes like the bare peers, and does what hotpath does on
// every request: a request id kept or made, nosniff, a recovered panic
// answered 500, Prometheus metrics by route template and status on the
// metrics listener, one JSON access-log line on stdout per request (none
// with -log-discard), and the /api/v1/fortunes pages of the size curve.
func TestFullPeersDoHotpathsJob(t *testing.T) {
	dsn := testDSN(t)
	for _, fp := range fullPeers {
		t.Run(fp.name, func(t *testing.T) {
			p := launchPeer(t, fp.name, "-driver", "postgres", "-dsn", dsn, "-test-routes")
			checkHello(t, p.base)
			checkDB(t, p.base, dsn)
			checkPages(t, p.base)

			ids := checkRequestIDs(t, p.base)
			resp, err := http.Get(p.base + "/panic")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("/panic: status %d, want 500", resp.StatusCode)
			}
			checkHello(t, p.base) // still serving

			metrics := fetch(t, p.metrics+"/metrics")
			for _, c := range []struct {
				path, status string
				least        int
			}{{"/json", "200", 2}, {"/plaintext", "200", len(ids)}, {"/panic", "500", 1}, {"/api/v1/fortunes", "200", 2}} {
				re := regexp.MustCompile(fmt.Sprintf(fp.counter, regexp.QuoteMeta(fp.route(c.path)), c.status))
				m := re.FindStringSubmatch(metrics)
				if m == nil {
					t.Errorf("metrics lack a count of %s %s matching %s", c.path, c.status, re)
					continue
				}
				if n, _ := strconv.Atoi(m[1]); n < c.least {
					t.Errorf("metrics count %d requests of %s %s, want at least %d", n, c.path, c.status, c.least)
				}
			}
			if !strings.Contains(metrics, "http_request_duration_seconds_bucket{") {
				t.Errorf("metrics lack the latency histogram:\n%s", metrics)
			}

			// Every request with a chosen id left exactly one JSON line
			// carrying it.
			lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
			for _, line := range lines {
				if !json.Valid([]byte(line)) {
					t.Errorf("access log line is not JSON: %q", line)
				}
			}
			for _, id := range ids {
				if n := strings.Count(p.stdout.String(), `"`+id+`"`); n != 1 {
					t.Errorf("request id %s is in %d access-log lines, want 1", id, n)
				}
			}

			quiet := launchPeer(t, fp.name, "-driver", "postgres", "-dsn", dsn, "-log-discard")
			for _, id := range checkRequestIDs(t, quiet.base) {
				if strings.Contains(quiet.stdout.String(), id) {
					t.Errorf("-log-discard: request %s logged on stdout", id)
				}
			}
		})
	}
}

// checkRequestIDs sends requests with ids of their own, which must come
// back, and without, which must get a fresh one each, all with nosniff. It
// returns the ids it sent.
func checkRequestIDs(t *testing.T, base string) []string {
	t.Helper()
	var sent []string
	seen := map[string]bool{}
	for i := range 6 {
		id := ""
		if i%2 == 0 {
			id = fmt.Sprintf("check-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), len(sent))
			sent = append(sent, id)
		}
		got := sendWithID(t, base, id).Get("X-Request-Id")
		switch {
		case id != "" && got != id:
			t.Errorf("sent X-Request-Id %q, answer carries %q", id, got)
		case id == "" && (got == "" || seen[got]):
			t.Errorf("no X-Request-Id sent: answer carries %q, want a fresh id", got)
		}
		seen[got] = true
	}
	return sent
}

// checkPages checks GET /api/v1/fortunes as hotpath answers it.
func checkPages(t *testing.T, base string) {
	t.Helper()
	var page struct {
		Items []struct {
			ID      int    `json:"id"`
			Message string `json:"message"`
		} `json:"items"`
		Next *string `json:"next"`
	}
	body := get(t, base, "/api/v1/fortunes?limit=5", jsonType)
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("/api/v1/fortunes?limit=5: %s: %v", body, err)
	}
	if len(page.Items) != 5 || page.Items[0].ID != 1 || page.Items[4].ID != 5 || page.Next == nil ||
		*page.Next != "/api/v1/fortunes?limit=5&after=5" {
		t.Errorf("/api/v1/fortunes?limit=5 = %s, want fortunes 1..5 and the next page", body)
	}
	page.Next = nil
	body = get(t, base, "/api/v1/fortunes?limit=100&after=10", jsonType)
	if err := json.Unmarshal(body, &page); err != nil || len(page.Items) != 2 || page.Items[0].ID != 11 || page.Next != nil {
		t.Errorf("/api/v1/fortunes?limit=100&after=10 = %s (%v), want fortunes 11 and 12, no next page", body, err)
	}
	resp, err := http.Get(base + "/api/v1/fortunes?limit=101")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("/api/v1/fortunes?limit=101: status %d, want 422", resp.StatusCode)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

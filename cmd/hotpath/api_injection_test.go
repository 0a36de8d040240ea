package main

import (
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sqlPayloads are classic SQL injection strings (quote breaking, stacked
// statements, UNION, comments, dollar quoting, backslashes, time delays on
// both dialects). Each must be stored and read back byte for byte, or
// refused with a 4xx; never a 500, a delay or a changed schema.
var sqlPayloads = []string{
	`' OR '1'='1`,
	`' OR 1=1--`,
	`admin'--`,
	`1;DROP TABLE World--`,
	`'; DROP TABLE Fortune; --`,
	`"; DROP TABLE Fortune; --`,
	`' UNION SELECT id, randomNumber FROM World--`,
	`1 UNION ALL SELECT NULL,NULL--`,
	`) OR (1=1`,
	`$$; DROP TABLE Fortune; $$`,
	`\`,
	`\'; DROP TABLE Fortune; --`,
	`%' AND '%'='`,
	`_`,
	`'; SELECT pg_sleep(5)--`,
	`' AND 1=(SELECT 1 FROM pg_sleep(5))--`,
	`' AND randomblob(500000000)--`,
	`' || (SELECT message FROM Fortune LIMIT 1) || '`,
	`?1 ?2 $1 $2 :name @name`,
	`'); INSERT INTO Fortune (message) VALUES ('injected'); --`,
}

// xssPayloads must be shown as text on every page, never run.
var xssPayloads = []string{
	`<script>window.__xss=1</script>`,
	`<img src=x onerror="window.__xss=1">`,
	`"><svg onload=alert(1)>`,
	`</textarea><script>alert(1)</script>`,
	`<a href="javascript:alert(1)">click</a>`,
	`</td></tr></table><iframe src="//evil.example"></iframe>`,
	`{{.}} {{template "x"}}`,
	`<style>body{display:none}</style>`,
}

// quick fails the test when one request took longer than a second: an
// injected sleep that ran would show here.
func quick(t *testing.T, what string, start time.Time) {
	t.Helper()
	if d := time.Since(start); d > time.Second {
		t.Errorf("%s took %s", what, d)
	}
}

func TestInjectionPayloadsAreStoredLiterally(t *testing.T) {
	withToken(t)
	// 28 form posts from one address: this test is about what is stored,
	// not about limits.anonymous_writes.
	t.Setenv("HOTPATH_LIMITS__ANONYMOUS_WRITES", "0")
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		count := fortuneCount(t, db)
		form := newFormClient(t, p.app)
		for _, payload := range append(append([]string{}, sqlPayloads...), xssPayloads...) {
			esc := url.PathEscape(payload)
			for _, c := range []struct{ method, path string }{
				{"GET", "/api/v1/worlds/" + esc},
				{"PUT", "/api/v1/worlds/" + esc},
				{"GET", "/api/v1/fortunes/" + esc},
				{"DELETE", "/api/v1/fortunes/" + esc},
			} {
				start := time.Now()
				resp, body := send(t, c.method, p.app+c.path, `{"randomNumber":1}`, "Content-Type", "application/json", authHeader[0], authHeader[1])
				quick(t, c.method+" "+c.path, start)
				if resp.StatusCode != 400 && resp.StatusCode != 404 {
					t.Errorf("%s %s: %d %s, want 400 or 404", c.method, c.path, resp.StatusCode, body)
				}
			}
			q := url.QueryEscape(payload)
			start := time.Now()
			resp, body := get(t, "GET", p.app+"/api/v1/fortunes?limit="+q+"&after="+q)
			quick(t, "GET fortunes?limit="+q, start)
			expectProblem(t, "GET fortunes with payload "+payload, resp, body, 422, "limit", "after")

			// Through JSON: stored and returned as sent.
			msg, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			resp, body = sendJSON(t, "POST", p.app+"/api/v1/fortunes", `{"message":`+string(msg)+`}`)
			quick(t, "POST "+payload, start)
			var created fortune
			if err := json.Unmarshal([]byte(body), &created); resp.StatusCode != 201 || err != nil || created.Message != payload {
				t.Errorf("POST %q: %d %s (%v)", payload, resp.StatusCode, body, err)
				continue
			}
			if strings.Contains(body, "<") {
				t.Errorf("POST %q: the JSON answer carries a raw '<': %s", payload, body)
			}
			if got := newFortuneDirect(t, db, created.ID).Message; got != payload {
				t.Errorf("API payload %q stored as %q", payload, got)
			}
			_, body = get(t, "GET", p.app+"/api/v1/fortunes/"+strconv.Itoa(created.ID))
			var read fortune
			if err := json.Unmarshal([]byte(body), &read); err != nil || read.Message != payload {
				t.Errorf("GET fortune %d = %s, want %q", created.ID, body, payload)
			}

			// Through the form: stored as sent.
			start = time.Now()
			if resp, body := form.post(payload, form.token()); resp.StatusCode != 303 {
				t.Errorf("form post %q: %d %s", payload, resp.StatusCode, body)
			}
			quick(t, "form post "+payload, start)
			count += 2
		}
		fs, err := db.Fortunes(t.Context(), nil)
		if err != nil || len(fs) != count {
			t.Fatalf("Fortune has %d rows (%v), want %d: an injection added or removed rows", len(fs), err, count)
		}
		stored := map[string]int{}
		for _, f := range fs {
			stored[f.Message]++
		}
		for _, payload := range append(append([]string{}, sqlPayloads...), xssPayloads...) {
			if stored[payload] != 2 {
				t.Errorf("payload %q is stored %d times, want twice (API and form)", payload, stored[payload])
			}
		}
		if stored["injected"] != 0 {
			t.Error("an injected INSERT ran")
		}
		worldsIntact(t, db)
		expectEscapedFortunes(t, p)
	})
}

// expectEscapedFortunes checks /fortunes shows every XSS payload as text.
func expectEscapedFortunes(t *testing.T, p *proc) {
	t.Helper()
	resp, body := get(t, "GET", p.app+"/fortunes")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("/fortunes: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	expectHTMLHeaders(t, "/fortunes", resp)
	shown := map[string]int{}
	for _, r := range fortuneRow.FindAllStringSubmatch(body, -1) {
		shown[html.UnescapeString(r[2])]++
	}
	for _, payload := range xssPayloads {
		if shown[payload] != 2 {
			t.Errorf("/fortunes shows %q %d times as text, want twice", payload, shown[payload])
		}
	}
	for _, raw := range []string{"<script>window", "<img", "<svg", "<iframe", "<a href", "<style>", "</textarea>"} {
		if strings.Contains(body, raw) {
			t.Errorf("/fortunes carries raw markup %q", raw)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// apiToken is the write token the API tests configure.
const apiToken = "test-token-0123456789abcdef"

var authHeader = []string{"Authorization", "Bearer " + apiToken}

// sendJSON sends body as application/json with the write token.
func sendJSON(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	return send(t, method, url, body, "Content-Type", "application/json", authHeader[0], authHeader[1])
}

// problemBody is an RFC 9457 answer.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// expectProblem checks an answer is a problem with status and, for 422,
// names exactly fields.
func expectProblem(t *testing.T, what string, resp *http.Response, body string, status int, fields ...string) problemBody {
	t.Helper()
	var p problemBody
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body %s", what, resp.StatusCode, status, body)
		return p
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("%s: body %q is not a problem with status %d (%v)", what, body, status, err)
	}
	if status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: 401 without WWW-Authenticate: Bearer", what)
	}
	var named []string
	for _, e := range p.Errors {
		named = append(named, e.Field)
	}
	if strings.Join(named, ",") != strings.Join(fields, ",") {
		t.Errorf("%s: problem names fields %v, want %v", what, named, fields)
	}
	return p
}

// fortuneCount reads the number of fortunes straight from the database.
func fortuneCount(t *testing.T, db database) int {
	t.Helper()
	fs, err := db.Fortunes(context.Background(), nil)
	if err != nil {
		t.Fatalf("count fortunes: %v", err)
	}
	return len(fs)
}

// worldsIntact checks World still has its 10000 rows.
func worldsIntact(t *testing.T, db database) {
	t.Helper()
	ws, err := db.AllWorlds(context.Background(), nil)
	if err != nil || len(ws) != 10000 {
		t.Errorf("World has %d rows (%v), want 10000", len(ws), err)
	}
}

// withToken configures apiToken for the processes the test starts (through
// the environment, which startProc passes on).
func withToken(t *testing.T) { t.Setenv("HOTPATH_AUTH__TOKENS", apiToken) }

func TestAPIWorlds(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		before, err := db.World(ctx, 42)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := get(t, "GET", p.app+"/api/v1/worlds/42")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("GET world 42: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if w := decodeWorlds(t, "GET world", body, false)[0]; w.ID != 42 || w.RandomNumber != int(before.RandomNumber) {
			t.Errorf("GET world 42 = %+v, database holds %+v", w, before)
		}

		for _, c := range []struct {
			path   string
			status int
		}{
			{"1", 200}, {"10000", 200}, {"0", 404}, {"10001", 404}, {"99999999999", 404}, {"4294967338", 404}, {"000042", 200},
			{"abc", 400}, {"-1", 400}, {"+1", 400}, {"1.0", 400}, {"1e3", 400}, {"0x10", 400}, {"%20", 400},
		} {
			resp, body := get(t, "GET", p.app+"/api/v1/worlds/"+c.path)
			if c.status == 200 {
				if resp.StatusCode != 200 {
					t.Errorf("GET world %q: %d %s", c.path, resp.StatusCode, body)
				}
				continue
			}
			expectProblem(t, "GET world "+c.path, resp, body, c.status)
		}

		// Every refused PUT leaves World 42 as it was.
		url := p.app + "/api/v1/worlds/42"
		refused := []struct {
			name    string
			path    string
			body    string
			headers []string
			status  int
			fields  []string
		}{
			{"no credentials", url, `{"randomNumber":7}`, []string{"Content-Type", "application/json"}, 401, nil},
			{"wrong token", url, `{"randomNumber":7}`, []string{"Content-Type", "application/json", "Authorization", "Bearer wrong-token-0123456789"}, 401, nil},
			{"token prefix", url, `{"randomNumber":7}`, []string{"Content-Type", "application/json", "Authorization", "Bearer " + apiToken[:10]}, 401, nil},
			{"basic scheme", url, `{"randomNumber":7}`, []string{"Content-Type", "application/json", "Authorization", "Basic " + apiToken}, 401, nil},
			{"anonymous bad body", url, `{nope`, []string{"Content-Type", "application/json"}, 401, nil},
			{"anonymous bad id", p.app + "/api/v1/worlds/abc", `{}`, nil, 401, nil},
			{"no content type", url, `{"randomNumber":7}`, authHeader, 415, nil},
			{"text/plain", url, `{"randomNumber":7}`, append([]string{"Content-Type", "text/plain"}, authHeader...), 415, nil},
			{"form type", url, `randomNumber=7`, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, authHeader...), 415, nil},
			{"malformed", url, `{"randomNumber":`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"empty", url, ``, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"array", url, `[{"randomNumber":7}]`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"string number", url, `{"randomNumber":"7"}`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"fraction", url, `{"randomNumber":7.5}`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"unknown field", url, `{"randomNumber":7,"id":9}`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"two objects", url, `{"randomNumber":7}{"randomNumber":8}`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
			{"zero", url, `{"randomNumber":0}`, append([]string{"Content-Type", "application/json"}, authHeader...), 422, []string{"randomNumber"}},
			{"too big", url, `{"randomNumber":10001}`, append([]string{"Content-Type", "application/json"}, authHeader...), 422, []string{"randomNumber"}},
			{"missing", url, `{}`, append([]string{"Content-Type", "application/json"}, authHeader...), 422, []string{"randomNumber"}},
			{"null", url, `{"randomNumber":null}`, append([]string{"Content-Type", "application/json"}, authHeader...), 422, []string{"randomNumber"}},
			{"id out of range", p.app + "/api/v1/worlds/10001", `{"randomNumber":7}`, append([]string{"Content-Type", "application/json"}, authHeader...), 404, nil},
			{"id not a number", p.app + "/api/v1/worlds/4%202", `{"randomNumber":7}`, append([]string{"Content-Type", "application/json"}, authHeader...), 400, nil},
		}
		for _, c := range refused {
			resp, body := send(t, "PUT", c.path, c.body, c.headers...)
			expectProblem(t, "PUT world: "+c.name, resp, body, c.status, c.fields...)
		}
		if after, err := db.World(ctx, 42); err != nil || after != before {
			t.Errorf("refused PUTs changed World 42 from %+v to %+v (%v)", before, after, err)
		}

		// A PUT stores the number and the World cache shows it.
		newNumber := before.RandomNumber%10000 + 1
		resp, body = sendJSON(t, "PUT", url, fmt.Sprintf(`{"randomNumber":%d}`, newNumber))
		if resp.StatusCode != 200 {
			t.Fatalf("PUT world 42: %d %s", resp.StatusCode, body)
		}
		if w := decodeWorlds(t, "PUT world", body, false)[0]; w.ID != 42 || w.RandomNumber != int(newNumber) {
			t.Errorf("PUT answered %+v, want randomNumber %d", w, newNumber)
		}
		if stored, err := db.World(ctx, 42); err != nil || stored.RandomNumber != newNumber {
			t.Errorf("database holds %+v (%v) after PUT %d", stored, err, newNumber)
		}
		if _, body := get(t, "GET", url); decodeWorlds(t, "GET after PUT", body, false)[0].RandomNumber != int(newNumber) {
			t.Errorf("GET after PUT: %s, want randomNumber %d", body, newNumber)
		}
		expectCached(t, p, 42, int(newNumber))
		worldsIntact(t, db)
	})
}

// expectCached polls /cached-queries until World id turns up (each answer
// holds 500 random ids, so about one in twenty does) and checks its number.
func expectCached(t *testing.T, p *proc, id, number int) {
	t.Helper()
	for range 400 {
		_, body := get(t, "GET", p.app+"/cached-queries?count=500")
		for _, w := range decodeWorlds(t, "/cached-queries", body, true) {
			if w.ID == id {
				if w.RandomNumber != number {
					t.Errorf("/cached-queries shows World %d = %d, want %d: PUT did not refresh the cache", id, w.RandomNumber, number)
				}
				return
			}
		}
	}
	t.Errorf("World %d never appeared in 400 answers of /cached-queries", id)
}

type fortune struct {
	ID      int    `json:"id"`
	Message string `json:"message"`
}

type fortunePage struct {
	Items []fortune `json:"items"`
	Next  *string   `json:"next"`
}

// listAll walks GET /api/v1/fortunes by its next links.
func listAll(t *testing.T, p *proc, limit int) []fortune {
	t.Helper()
	var all []fortune
	next := fmt.Sprintf("/api/v1/fortunes?limit=%d", limit)
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		resp, body := get(t, "GET", p.app+next)
		var page fortunePage
		if err := json.Unmarshal([]byte(body), &page); resp.StatusCode != 200 || err != nil || page.Items == nil {
			t.Fatalf("GET %s: %d %s (%v)", next, resp.StatusCode, body, err)
		}
		if len(page.Items) > limit {
			t.Fatalf("GET %s: %d items, limit %d", next, len(page.Items), limit)
		}
		all = append(all, page.Items...)
		if page.Next == nil {
			return all
		}
		if len(page.Items) != limit {
			t.Fatalf("GET %s: a short page (%d) with a next link", next, len(page.Items))
		}
		want := fmt.Sprintf("/api/v1/fortunes?limit=%d&after=%d", limit, page.Items[len(page.Items)-1].ID)
		if *page.Next != want {
			t.Fatalf("next = %q, want %q", *page.Next, want)
		}
		next = *page.Next
	}
}

func TestAPIFortunes(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		stored, err := db.Fortunes(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 5, 12, 100} {
			got := listAll(t, p, limit)
			if len(got) != len(stored) {
				t.Fatalf("limit %d: pages hold %d fortunes, database %d", limit, len(got), len(stored))
			}
			for i := range got {
				if got[i].ID != i+1 || got[i].Message != stored[i].Message {
					t.Errorf("limit %d: item %d = %+v, want id %d %q", limit, i, got[i], i+1, stored[i].Message)
				}
			}
		}
		resp, body := get(t, "GET", p.app+"/api/v1/fortunes")
		var page fortunePage
		if err := json.Unmarshal([]byte(body), &page); resp.StatusCode != 200 || err != nil || len(page.Items) != 12 || page.Next != nil {
			t.Errorf("GET fortunes without parameters: %d %s (%v); want the 12 fortunes on one page of the default 20", resp.StatusCode, body, err)
		}
		resp, body = get(t, "GET", p.app+"/api/v1/fortunes?after=12")
		if resp.StatusCode != 200 || body != `{"items":[],"next":null}` {
			t.Errorf("GET fortunes after the last: %d %s, want an empty page", resp.StatusCode, body)
		}
		for _, c := range []struct {
			query  string
			fields []string
		}{
			{"limit=0", []string{"limit"}}, {"limit=101", []string{"limit"}}, {"limit=abc", []string{"limit"}},
			{"limit=", []string{"limit"}}, {"limit=-1", []string{"limit"}}, {"limit=+5", []string{"limit"}},
			{"after=-1", []string{"after"}}, {"after=x", []string{"after"}}, {"after=2147483648", []string{"after"}},
			{"limit=0&after=x", []string{"limit", "after"}}, {"limit=1%20OR%201=1&after=1;DROP%20TABLE%20Fortune", []string{"limit", "after"}},
		} {
			resp, body := get(t, "GET", p.app+"/api/v1/fortunes?"+c.query)
			expectProblem(t, "GET fortunes?"+c.query, resp, body, 422, c.fields...)
		}

		for _, c := range []struct {
			path   string
			status int
		}{{"0", 404}, {"13", 404}, {"2147483647", 404}, {"2147483648", 404}, {"abc", 400}, {"-3", 400}, {"3abc", 400}} {
			resp, body := get(t, "GET", p.app+"/api/v1/fortunes/"+c.path)
			expectProblem(t, "GET fortune "+c.path, resp, body, c.status)
		}
		resp, body = get(t, "GET", p.app+"/api/v1/fortunes/12")
		var one fortune
		if err := json.Unmarshal([]byte(body), &one); resp.StatusCode != 200 || err != nil || one.ID != 12 || one.Message != stored[11].Message {
			t.Errorf("GET fortune 12: %d %s (%v)", resp.StatusCode, body, err)
		}

		// Refused writes change nothing.
		url := p.app + "/api/v1/fortunes"
		jsonType := []string{"Content-Type", "application/json"}
		withAuth := append(append([]string{}, jsonType...), authHeader...)
		for _, c := range []struct {
			name    string
			method  string
			url     string
			body    string
			headers []string
			status  int
			fields  []string
		}{
			{"POST without credentials", "POST", url, `{"message":"x"}`, jsonType, 401, nil},
			{"POST with a wrong token", "POST", url, `{"message":"x"}`, append([]string{"Authorization", "Bearer not-the-token-0123456789"}, jsonType...), 401, nil},
			{"DELETE without credentials", "DELETE", url + "/1", ``, nil, 401, nil},
			{"DELETE with a wrong token", "DELETE", url + "/1", ``, []string{"Authorization", "Bearer not-the-token-0123456789"}, 401, nil},
			{"POST as text/plain", "POST", url, `{"message":"x"}`, append([]string{"Content-Type", "text/plain"}, authHeader...), 415, nil},
			{"POST malformed", "POST", url, `{"message":"x"`, withAuth, 400, nil},
			{"POST null", "POST", url, `null`, withAuth, 400, nil},
			{"POST number message", "POST", url, `{"message":5}`, withAuth, 400, nil},
			{"POST unknown field", "POST", url, `{"message":"x","id":99}`, withAuth, 400, nil},
			{"POST invalid UTF-8", "POST", url, "{\"message\":\"\xc3\x28\"}", withAuth, 400, nil},
			{"POST empty message", "POST", url, `{"message":""}`, withAuth, 422, []string{"message"}},
			{"POST no message", "POST", url, `{}`, withAuth, 422, []string{"message"}},
			{"POST 501 characters", "POST", url, `{"message":"` + strings.Repeat("ж", 501) + `"}`, withAuth, 422, []string{"message"}},
			{"POST control character", "POST", url, `{"message":"a\u0001b"}`, withAuth, 422, []string{"message"}},
			{"POST carriage return", "POST", url, `{"message":"a\rb"}`, withAuth, 422, []string{"message"}},
			{"DELETE a missing fortune", "DELETE", url + "/9999", ``, authHeader, 404, nil},
			{"DELETE a bad id", "DELETE", url + "/x", ``, authHeader, 400, nil},
		} {
			resp, body := send(t, c.method, c.url, c.body, c.headers...)
			expectProblem(t, c.name, resp, body, c.status, c.fields...)
		}
		if n := fortuneCount(t, db); n != 12 {
			t.Errorf("refused writes changed the fortune count to %d, want 12", n)
		}

		// A POST stores the message as sent; its Location reads it back.
		msg := strings.Repeat("ж", 498) + "\t\n" // 500 characters
		resp, body = sendJSON(t, "POST", url, fmt.Sprintf(`{"message":%q}`, msg))
		var created fortune
		if err := json.Unmarshal([]byte(body), &created); resp.StatusCode != 201 || err != nil || created.Message != msg || created.ID < 13 {
			t.Fatalf("POST fortune: %d %s (%v)", resp.StatusCode, body, err)
		}
		loc := resp.Header.Get("Location")
		if loc != fmt.Sprintf("/api/v1/fortunes/%d", created.ID) {
			t.Errorf("Location %q, want /api/v1/fortunes/%d", loc, created.ID)
		}
		resp, body = get(t, "GET", p.app+loc)
		var read fortune
		if err := json.Unmarshal([]byte(body), &read); resp.StatusCode != 200 || err != nil || read != created {
			t.Errorf("GET %s = %d %s, want %+v", loc, resp.StatusCode, body, created)
		}
		if f, err := db.Fortune(ctx, int32(created.ID)); err != nil || f.Message != msg {
			t.Errorf("database holds %+v (%v), want %q", f, err, msg)
		}

		resp, body = send(t, "DELETE", p.app+loc, "", authHeader...)
		if resp.StatusCode != 204 || body != "" {
			t.Errorf("DELETE %s: %d %q, want 204 and no body", loc, resp.StatusCode, body)
		}
		resp, body = get(t, "GET", p.app+loc)
		expectProblem(t, "GET after DELETE", resp, body, 404)
		resp, body = send(t, "DELETE", p.app+loc, "", authHeader...)
		expectProblem(t, "DELETE twice", resp, body, 404)
		if n := fortuneCount(t, db); n != 12 {
			t.Errorf("after POST and DELETE there are %d fortunes, want 12", n)
		}
	})
}

func TestAPIWritesRefusedWithoutConfiguredTokens(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/worlds/1", `{"randomNumber":5}`},
		{"POST", "/api/v1/fortunes", `{"message":"x"}`},
		{"DELETE", "/api/v1/fortunes/1", ``},
	} {
		resp, body := send(t, c.method, p.app+c.path, c.body, "Content-Type", "application/json", "Authorization", "Bearer anything-0123456789abcdef")
		pb := expectProblem(t, c.method+" "+c.path, resp, body, 401)
		if !strings.Contains(pb.Detail, "auth.tokens") || !strings.Contains(pb.Detail, "HOTPATH_AUTH__TOKENS") {
			t.Errorf("%s %s: detail %q does not say how to configure tokens", c.method, c.path, pb.Detail)
		}
	}
	if resp, _ := get(t, "GET", p.app+"/api/v1/fortunes/1"); resp.StatusCode != 200 {
		t.Errorf("reads must stay open without tokens: %d", resp.StatusCode)
	}
}

func TestAPIOpenAPIDocumentIsServed(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	resp, body := get(t, "GET", p.app+"/api/v1/openapi.json")
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); resp.StatusCode != 200 || err != nil ||
		resp.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(doc.OpenAPI, "3.1") || len(doc.Paths) == 0 {
		t.Errorf("GET /api/v1/openapi.json: %d %q, openapi %q, %d paths (%v)", resp.StatusCode, resp.Header.Get("Content-Type"), doc.OpenAPI, len(doc.Paths), err)
	}
}

// newFortuneDirect is how the injection test checks what reached the table.
func newFortuneDirect(t *testing.T, db database, id int) Fortune {
	t.Helper()
	f, err := db.Fortune(context.Background(), int32(id))
	if err != nil {
		t.Fatalf("read fortune %d directly: %v", id, err)
	}
	return f
}

func TestAPIBodyOverMaxBodySizeIs413(t *testing.T) {
	withToken(t)
	p := startProc(t, "--server.max_body_size=1024")
	defer p.stop(t)
	db := openDirect(t, "sqlite", dbPath(t, p))
	count := fortuneCount(t, db)
	big := `{"message":"` + strings.Repeat("x", 2000) + `"}`
	resp, body := sendJSON(t, "POST", p.app+"/api/v1/fortunes", big)
	expectProblem(t, "POST over server.max_body_size", resp, body, 413)
	resp, body = sendJSON(t, "PUT", p.app+"/api/v1/worlds/1", `{"randomNumber":1`+strings.Repeat(" ", 2000)+`}`)
	expectProblem(t, "PUT over server.max_body_size", resp, body, 413)
	if n := fortuneCount(t, db); n != count {
		t.Errorf("an oversized body changed the fortune count from %d to %d", count, n)
	}
	// Just under the limit is decoded as usual.
	resp, body = sendJSON(t, "POST", p.app+"/api/v1/fortunes", `{"message":"`+strings.Repeat("y", 500)+`"}`)
	if resp.StatusCode != 201 {
		t.Errorf("a body under server.max_body_size: %d %s", resp.StatusCode, body)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// expectHeader checks one response header.
func expectHeader(t *testing.T, what string, resp *http.Response, name, want string) {
	t.Helper()
	if got := resp.Header.Get(name); got != want {
		t.Errorf("%s: %s %q, want %q", what, name, got, want)
	}
}

func TestAPIConditionalReads(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		w, err := db.World(ctx, 42)
		if err != nil {
			t.Fatal(err)
		}
		url := p.app + "/api/v1/worlds/42"
		tag := fmt.Sprintf(`"w%d"`, w.RandomNumber)
		resp, body := get(t, "GET", url)
		expectHeader(t, "GET world", resp, "ETag", tag)
		expectHeader(t, "GET world", resp, "Cache-Control", "no-cache")

		notModified := func(what, path string, wantTag string, headers ...string) {
			t.Helper()
			for _, method := range []string{"GET", "HEAD"} {
				resp, body := get(t, method, p.app+path, headers...)
				if resp.StatusCode != 304 || body != "" {
					t.Errorf("%s %s (%s): %d with %d bytes, want 304 and no body", method, path, what, resp.StatusCode, len(body))
					continue
				}
				expectHeader(t, method+" "+what, resp, "ETag", wantTag)
				expectHeader(t, method+" "+what, resp, "Cache-Control", "no-cache")
			}
		}
		full := func(what, path string, headers ...string) {
			t.Helper()
			resp, body := get(t, "GET", p.app+path, headers...)
			if resp.StatusCode != 200 || body == "" {
				t.Errorf("GET %s (%s): %d %q, want 200 with the body", path, what, resp.StatusCode, body)
			}
		}
		notModified("same tag", "/api/v1/worlds/42", tag, "If-None-Match", tag)
		notModified("weak comparison", "/api/v1/worlds/42", tag, "If-None-Match", "W/"+tag)
		notModified("in a list", "/api/v1/worlds/42", tag, "If-None-Match", `"w0", `+tag)
		notModified("wildcard", "/api/v1/worlds/42", tag, "If-None-Match", "*")
		gz := strings.TrimSuffix(tag, `"`) + `-gzip"`
		notModified("compressed variant keeps its tag", "/api/v1/worlds/42", gz, "If-None-Match", gz)
		full("other tag", "/api/v1/worlds/42", "If-None-Match", fmt.Sprintf(`"w%d"`, w.RandomNumber%10000+1))
		full("malformed", "/api/v1/worlds/42", "If-None-Match", "w"+fmt.Sprint(w.RandomNumber))
		if decodeWorlds(t, "GET world", body, false)[0].RandomNumber != int(w.RandomNumber) {
			t.Errorf("GET world 42: %s", body)
		}

		// A write changes the tag; the old one then gets the whole answer.
		resp, body = send(t, "PUT", url, `{"randomNumber":`+fmt.Sprint(w.RandomNumber%10000+1)+`}`,
			"Content-Type", "application/json", authHeader[0], authHeader[1])
		newTag := fmt.Sprintf(`"w%d"`, w.RandomNumber%10000+1)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT world 42: %d %s", resp.StatusCode, body)
		}
		expectHeader(t, "PUT world", resp, "ETag", newTag)
		expectHeader(t, "PUT world", resp, "Cache-Control", "no-store")
		full("tag before the PUT", "/api/v1/worlds/42", "If-None-Match", tag)
		notModified("tag the PUT answered", "/api/v1/worlds/42", newTag, "If-None-Match", newTag)

		// Fortunes: the id is the version.
		resp, _ = get(t, "GET", p.app+"/api/v1/fortunes/3")
		expectHeader(t, "GET fortune", resp, "ETag", `"f3"`)
		expectHeader(t, "GET fortune", resp, "Cache-Control", "no-cache")
		notModified("fortune", "/api/v1/fortunes/3", `"f3"`, "If-None-Match", `"f3"`)
		full("another fortune's tag", "/api/v1/fortunes/3", "If-None-Match", `"f4"`)

		// Pages: a full page keeps its tag when a fortune is added after
		// it; the last page changes.
		first, _ := get(t, "GET", p.app+"/api/v1/fortunes?limit=5")
		last, _ := get(t, "GET", p.app+"/api/v1/fortunes?limit=5&after=10")
		firstTag, lastTag := first.Header.Get("ETag"), last.Header.Get("ETag")
		if !strings.HasPrefix(firstTag, `"p`) || firstTag == lastTag {
			t.Fatalf("page tags %q and %q, want two different \"p...\" tags", firstTag, lastTag)
		}
		notModified("page", "/api/v1/fortunes?limit=5", firstTag, "If-None-Match", firstTag)
		resp, body = sendJSON(t, "POST", p.app+"/api/v1/fortunes", `{"message":"a new one"}`)
		if resp.StatusCode != 201 {
			t.Fatalf("POST fortune: %d %s", resp.StatusCode, body)
		}
		id := strings.TrimPrefix(resp.Header.Get("Location"), "/api/v1/fortunes/")
		expectHeader(t, "POST fortune", resp, "ETag", `"f`+id+`"`)
		expectHeader(t, "POST fortune", resp, "Cache-Control", "no-store")
		notModified("full page after an add", "/api/v1/fortunes?limit=5", firstTag, "If-None-Match", firstTag)
		full("last page after an add", "/api/v1/fortunes?limit=5&after=10", "If-None-Match", lastTag)

		// Problems are never stored by caches.
		resp, body = get(t, "GET", p.app+"/api/v1/fortunes/999999")
		expectProblem(t, "GET missing fortune", resp, body, 404)
		expectHeader(t, "GET missing fortune", resp, "Cache-Control", "no-store")

		resp, _ = get(t, "GET", p.app+"/api/v1/openapi.json")
		docTag := resp.Header.Get("ETag")
		notModified("OpenAPI document", "/api/v1/openapi.json", docTag, "If-None-Match", docTag)
	})
}

func TestAPIIfMatch(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		w, err := db.World(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		url := p.app + "/api/v1/worlds/7"
		current := fmt.Sprintf(`"w%d"`, w.RandomNumber)
		stale := fmt.Sprintf(`"w%d"`, w.RandomNumber%10000+1)
		put := func(n int, ifMatch string) (*http.Response, string) {
			return send(t, "PUT", url, fmt.Sprintf(`{"randomNumber":%d}`, n),
				"Content-Type", "application/json", authHeader[0], authHeader[1], "If-Match", ifMatch)
		}
		for _, bad := range []string{stale, "W/" + current, `"f7"`, `"x"`, `w` + fmt.Sprint(w.RandomNumber)} {
			resp, body := put(1234, bad)
			expectProblem(t, "PUT with If-Match "+bad, resp, body, 412)
			expectHeader(t, "412", resp, "Cache-Control", "no-store")
		}
		if after, _ := db.World(ctx, 7); after != w {
			t.Fatalf("refused PUTs changed World 7 from %+v to %+v", w, after)
		}
		// The tag of the compressed representation stands for the same state.
		next := int(w.RandomNumber)%10000 + 1
		resp, body := put(next, `"w0", `+strings.TrimSuffix(current, `"`)+`-br"`)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT with the current tag: %d %s", resp.StatusCode, body)
		}
		expectHeader(t, "PUT", resp, "ETag", fmt.Sprintf(`"w%d"`, next))
		resp, body = put(next, current)
		expectProblem(t, "PUT with the tag it replaced", resp, body, 412)
		if resp, body := put(99, "*"); resp.StatusCode != 200 {
			t.Errorf("PUT with If-Match *: %d %s", resp.StatusCode, body)
		}
		if after, _ := db.World(ctx, 7); after.RandomNumber != 99 {
			t.Errorf("World 7 holds %d after If-Match *, want 99", after.RandomNumber)
		}

		// DELETE: the fortune's own tag or *, while it exists.
		f1, err := db.AddFortune(ctx, "first to go")
		if err != nil {
			t.Fatal(err)
		}
		f2, err := db.AddFortune(ctx, "second to go")
		if err != nil {
			t.Fatal(err)
		}
		del := func(id int32, ifMatch string) (*http.Response, string) {
			h := []string{authHeader[0], authHeader[1]}
			if ifMatch != "" {
				h = append(h, "If-Match", ifMatch)
			}
			return send(t, "DELETE", fmt.Sprintf("%s/api/v1/fortunes/%d", p.app, id), "", h...)
		}
		resp, body = del(f1.ID, fmt.Sprintf(`"f%d"`, f2.ID))
		expectProblem(t, "DELETE with another fortune's tag", resp, body, 412)
		if _, err := db.Fortune(ctx, f1.ID); err != nil {
			t.Errorf("fortune %d gone after a refused DELETE: %v", f1.ID, err)
		}
		own := fmt.Sprintf(`"f%d"`, f1.ID)
		if resp, body := del(f1.ID, own); resp.StatusCode != 204 {
			t.Errorf("DELETE with its own tag: %d %s", resp.StatusCode, body)
		}
		expectHeader(t, "DELETE", resp, "Cache-Control", "no-store")
		resp, body = del(f1.ID, own)
		expectProblem(t, "DELETE again with If-Match", resp, body, 412)
		resp, body = del(f1.ID, "*")
		expectProblem(t, "DELETE a gone fortune with If-Match *", resp, body, 412)
		resp, body = del(f1.ID, "")
		expectProblem(t, "DELETE a gone fortune without If-Match", resp, body, 404)
		if resp, body := del(f2.ID, "*"); resp.StatusCode != 204 {
			t.Errorf("DELETE with If-Match *: %d %s", resp.StatusCode, body)
		}
	})
}

// TestConcurrentIfMatchWritersOneWins sends writers holding the same ETag
// at once, round after round: exactly one may win each round.
func TestConcurrentIfMatchWritersOneWins(t *testing.T) {
	withToken(t)
	forEachDriver(t, func(t *testing.T, p *proc, db database) {
		ctx := context.Background()
		const writers, rounds = 8, 5
		url := p.app + "/api/v1/worlds/99"
		for round := range rounds {
			w, err := db.World(ctx, 99)
			if err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprintf(`"w%d"`, w.RandomNumber)
			statuses := make([]int, writers)
			errs := make([]error, writers)
			var start, done sync.WaitGroup
			start.Add(1)
			for i := range writers {
				done.Add(1)
				go func() {
					defer done.Done()
					// Every writer stores a value other than the current one.
					n := (int(w.RandomNumber)+i)%10000 + 1
					req, err := http.NewRequest("PUT", url, strings.NewReader(fmt.Sprintf(`{"randomNumber":%d}`, n)))
					if err != nil {
						errs[i] = err
						return
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set(authHeader[0], authHeader[1])
					req.Header.Set("If-Match", tag)
					start.Wait()
					resp, err := client.Do(req)
					if err != nil {
						errs[i] = err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				}()
			}
			start.Done()
			done.Wait()
			won := -1
			for i, s := range statuses {
				switch {
				case errs[i] != nil:
					t.Fatalf("round %d writer %d: %v", round, i, errs[i])
				case s == 200 && won >= 0:
					t.Fatalf("round %d: writers %d and %d both won with If-Match %s (statuses %v)", round, won, i, tag, statuses)
				case s == 200:
					won = i
				case s != 412:
					t.Fatalf("round %d writer %d: status %d, want 200 or 412", round, i, s)
				}
			}
			if won < 0 {
				t.Fatalf("round %d: no writer won (statuses %v)", round, statuses)
			}
			if after, _ := db.World(ctx, 99); int(after.RandomNumber) != (int(w.RandomNumber)+won)%10000+1 {
				t.Fatalf("round %d: World 99 holds %d, the winner wrote %d", round, after.RandomNumber, (int(w.RandomNumber)+won)%10000+1)
			}
		}
	})
}

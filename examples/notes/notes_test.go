package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath"
)

const token = "notes-test-token-0123456789"

// started starts the service on free loopback ports with args (a database
// of its own is the caller's), and stops it when the test ends.
func started(t *testing.T, args ...string) *hotpath.App {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty.toml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	app := newApp(hotpath.Output(io.Discard, io.Discard))
	base := []string{"-config", filepath.Join(dir, "empty.toml"), "--server.addr=127.0.0.1:0", "--admin.addr=127.0.0.1:0",
		"--auth.tokens=" + token, "--shutdown.drain=0s"}
	if err := app.Start(append(base, args...)...); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return app
}

// drivers are the two databases the service runs on: a fresh SQLite file,
// and a fresh PostgreSQL database (HOTPATH_TEST_POSTGRES_DSN names the
// server; without it the PostgreSQL case skips, or fails under CI=true).
func drivers(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"sqlite": func(t *testing.T) []string {
			return []string{"--db.dsn=" + filepath.Join(t.TempDir(), "notes.db")}
		},
		"postgres": func(t *testing.T) []string {
			return []string{"--db.driver=postgres", "--db.dsn=" + postgresDatabase(t)}
		},
	}
}

// client records every exchange for the conformance check of
// TestEveryExchangeFollowsTheDocument.
var client = &http.Client{Timeout: 10 * time.Second, Transport: recorder}

func call(t *testing.T, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var auth = []string{"Authorization", "Bearer " + token}

func TestNotesContract(t *testing.T) {
	for name, args := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			app := started(t, args(t)...)
			base := "http://" + app.Addr()

			resp, body := call(t, "POST", base+"/v1/notes", `{"title":"Groceries","body":"eggs, milk"}`, auth...)
			var n struct {
				ID        int64  `json:"id"`
				Title     string `json:"title"`
				Body      string `json:"body"`
				CreatedAt string `json:"created_at"`
			}
			if resp.StatusCode != 201 || json.Unmarshal([]byte(body), &n) != nil || n.ID < 1 || n.Title != "Groceries" || n.Body != "eggs, milk" {
				t.Fatalf("POST: %d %s, want 201 with the note", resp.StatusCode, body)
			}
			if at, err := time.Parse(time.RFC3339, n.CreatedAt); err != nil || time.Since(at) > time.Minute {
				t.Errorf("created_at %q is not a recent RFC 3339 time (%v)", n.CreatedAt, err)
			}
			loc := fmt.Sprintf("/v1/notes/%d", n.ID)
			if got := resp.Header.Get("Location"); got != loc {
				t.Errorf("Location %q, want %q", got, loc)
			}

			resp, got := call(t, "GET", base+loc, "")
			if resp.StatusCode != 200 || got != body {
				t.Errorf("GET %s: %d %s, want 200 and the POST's body %s", loc, resp.StatusCode, got, body)
			}
			tag := resp.Header.Get("ETag")
			if resp, _ := call(t, "GET", base+loc, "", "If-None-Match", tag); tag == "" || resp.StatusCode != 304 {
				t.Errorf("GET with If-None-Match %q: %d, want 304", tag, resp.StatusCode)
			}

			for _, c := range []struct {
				what, body string
				headers    []string
				status     int
				field      string
			}{
				{"empty title", `{"title":""}`, auth, 422, "title"},
				{"201-character title", `{"title":"` + strings.Repeat("t", 201) + `"}`, auth, 422, "title"},
				{"5001-character body", `{"title":"t","body":"` + strings.Repeat("b", 5001) + `"}`, auth, 422, "body"},
				{"unknown member", `{"title":"t","colour":"red"}`, auth, 400, ""},
				{"no token", `{"title":"t"}`, nil, 401, ""},
			} {
				resp, body := call(t, "POST", base+"/v1/notes", c.body, c.headers...)
				var p struct {
					Status int `json:"status"`
					Errors []struct {
						Field string `json:"field"`
					} `json:"errors"`
				}
				if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal([]byte(body), &p) != nil {
					t.Errorf("%s: %d %s, want a %d problem", c.what, resp.StatusCode, body, c.status)
					continue
				}
				if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
					t.Errorf("%s: errors %+v, want errors[0].field %q", c.what, p.Errors, c.field)
				}
			}
			if resp, _ := call(t, "GET", base+"/v1/notes/999999", ""); resp.StatusCode != 404 {
				t.Errorf("an unknown id: %d, want 404", resp.StatusCode)
			}

			for i := range 3 {
				call(t, "POST", base+"/v1/notes", fmt.Sprintf(`{"title":"note %d"}`, i), auth...)
			}
			resp, body = call(t, "GET", base+"/v1/notes?limit=2", "")
			var page struct {
				Items []struct{ ID int64 }
				Next  *string
			}
			if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.Items) != 2 || page.Next == nil {
				t.Fatalf("GET /v1/notes?limit=2: %d %s, want 2 items and a next link", resp.StatusCode, body)
			}
			resp, body = call(t, "GET", base+*page.Next, "")
			if json.Unmarshal([]byte(body), &page) != nil || len(page.Items) != 2 || page.Next != nil {
				t.Errorf("the next page: %d %s, want the last 2 notes and next null", resp.StatusCode, body)
			}
			if resp, _ := call(t, "GET", base+"/v1/notes?limit=101", ""); resp.StatusCode != 422 {
				t.Errorf("limit=101: %d, want 422", resp.StatusCode)
			}

			if resp, body := call(t, "DELETE", base+loc, "", auth...); resp.StatusCode != 204 || body != "" {
				t.Errorf("DELETE: %d %q, want 204", resp.StatusCode, body)
			}
			if resp, _ := call(t, "GET", base+loc, ""); resp.StatusCode != 404 {
				t.Errorf("GET after DELETE: %d, want 404", resp.StatusCode)
			}
			if resp, _ := call(t, "DELETE", base+loc, ""); resp.StatusCode != 401 {
				t.Errorf("DELETE without a token: %d, want 401", resp.StatusCode)
			}

			_, metrics := call(t, "GET", "http://"+app.AdminAddr()+"/metrics", "")
			if want := `http_requests_total{route="/v1/notes/{id}",method="GET",code="200"} 1`; !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
			for _, path := range []string{"/healthz", "/readyz"} {
				if resp, body := call(t, "GET", "http://"+app.AdminAddr()+path, ""); resp.StatusCode != 200 {
					t.Errorf("%s: %d %s", path, resp.StatusCode, body)
				}
			}
		})
	}
}

func TestOpenAPIDocumentDescribesTheTitle(t *testing.T) {
	app := started(t, "--db.dsn="+filepath.Join(t.TempDir(), "notes.db"))
	resp, body := call(t, "GET", "http://"+app.Addr()+"/v1/openapi.json", "")
	var doc struct {
		OpenAPI    string
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					MinLength, MaxLength int
				}
				Required []string
			}
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d %.200s", resp.StatusCode, body)
	}
	title := doc.Components.Schemas["NewNote"].Properties["title"]
	if title.MinLength != 1 || title.MaxLength != 200 {
		t.Errorf("NewNote.title: minLength %d maxLength %d, want 1 and 200", title.MinLength, title.MaxLength)
	}
}

// TestConfigurationIsTheServicesOwn: the environment prefix is NOTES_, and
// the service's own section is as strict as hotpath's.
func TestConfigurationIsTheServicesOwn(t *testing.T) {
	t.Setenv("NOTES_NOTES__MAX_NOTES", "2")
	app := started(t, "--db.dsn="+filepath.Join(t.TempDir(), "notes.db"))
	base := "http://" + app.Addr()
	var first string
	for i, want := range []int{201, 201, 409} {
		resp, body := call(t, "POST", base+"/v1/notes", fmt.Sprintf(`{"title":"n%d"}`, i), auth...)
		if resp.StatusCode != want {
			t.Fatalf("create %d with notes.max_notes 2 from NOTES_NOTES__MAX_NOTES: %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
		if i == 0 {
			first = resp.Header.Get("Location")
		}
	}
	call(t, "DELETE", base+first, "", auth...)
	if resp, body := call(t, "POST", base+"/v1/notes", `{"title":"room again"}`, auth...); resp.StatusCode != 201 {
		t.Errorf("create after a delete: %d %s, want 201", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"NOTES_NOTES__MAX_NOTEZ=3"}, nil, "notes.max_notez (environment NOTES_NOTES__MAX_NOTEZ): unknown key"},
		{nil, []string{"--notes.max_notes=0"}, "notes.max_notes (flag --notes.max_notes): must be at least 1"},
		{nil, []string{"--server.adrr=:1"}, "server.adrr"},
	} {
		var stderr strings.Builder
		code := newApp(hotpath.Output(io.Discard, &stderr)).Run(append([]string{"-config", os.DevNull}, tc.args...), tc.env)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("env %v args %v: exit %d, %q; want 2 naming %q", tc.env, tc.args, code, stderr.String(), tc.want)
		}
	}
}

// postgresDatabase creates a database of the test's own on the server
// HOTPATH_TEST_POSTGRES_DSN names, dropped when the test ends.
func postgresDatabase(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("HOTPATH_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("HOTPATH_TEST_POSTGRES_DSN is not set; CI must run the PostgreSQL tests")
		}
		noteSkip("examples/notes on PostgreSQL", "HOTPATH_TEST_POSTGRES_DSN is not set")
		t.Skip("HOTPATH_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("notes_t_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

// noteSkip tells `make test`'s summary what was not tested here.
func noteSkip(suite, reason string) {
	if path := os.Getenv("HOTPATH_TEST_SKIPS"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600); err == nil {
			fmt.Fprintf(f, "%s\t%s\n", suite, reason)
			f.Close()
		}
	}
}

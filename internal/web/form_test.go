package web

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/store"
)

// newTestForm returns a Form over a fresh SQLite database and its store.
func newTestForm(t testing.TB) (*Form, *csrf.Protector, *store.SQLite) {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "form.db"), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	p, err := csrf.New([]byte("form-test-secret-0123456789abcdef"), []string{"https://partner.example"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return NewForm(s, p, api.Limits{}, 5*time.Second, slog.New(slog.DiscardHandler)), p, s
}

// issue asks the form page for a cookie and a token.
func issue(t testing.TB, f *Form) (cookie, token string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetHost("127.0.0.1:8080")
	f.New(&ctx)
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey("hotpath_csrf")
	if !ctx.Response.Header.Cookie(c) {
		t.Fatal("the form page set no cookie")
	}
	body := string(ctx.Response.Body())
	const field = `name="csrf_token" value="`
	i := strings.Index(body, field)
	if i < 0 {
		t.Fatalf("no token in the form page:\n%s", body)
	}
	rest := body[i+len(field):]
	return string(c.Value()), rest[:strings.IndexByte(rest, '"')]
}

func countFortunes(t testing.TB, s *store.SQLite) int {
	t.Helper()
	fs, err := s.Fortunes(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return len(fs)
}

// FuzzFormPost posts arbitrary bodies, content types, fetch metadata,
// Origin and Referer values and cookies to POST /fortunes. The form must
// never panic, must answer only 303, 403, 415 or 422, and must store one
// row exactly when it answers 303, which it may do only for a same-origin
// (or trusted) post carrying a valid token for its cookie and a valid
// message.
func FuzzFormPost(f *testing.F) {
	form, p, s := newTestForm(f)
	cookie, token := issue(f, form)
	const formType = "application/x-www-form-urlencoded"
	valid := url.Values{"message": {"hello"}, "csrf_token": {token}}.Encode()
	f.Add(valid, formType, "same-origin", "http://127.0.0.1:8080", "", cookie)
	f.Add(valid, formType, "", "", "http://127.0.0.1:8080/fortunes/new", cookie)
	f.Add(valid, formType, "cross-site", "https://evil.example", "", cookie)
	f.Add(valid, formType, "same-site", "https://partner.example", "", cookie)
	f.Add(valid, "text/plain", "", "", "", cookie)
	f.Add(valid, formType, "", "null", "", cookie)
	f.Add(valid, formType, "", "", "", "")
	f.Add("message=&csrf_token="+token, formType, "", "", "", cookie)
	f.Add("message=a%0Db&csrf_token="+token, formType, "", "", "", cookie)
	f.Add("csrf_token="+token+"&message=%3Cscript%3E", formType+"; charset=utf-8", "none", "", "", cookie)
	f.Add("message=x&csrf_token="+token+"&csrf_token=AAAA", formType, "", "", "", cookie)
	f.Fuzz(func(t *testing.T, body, contentType, site, origin, referer, cookieValue string) {
		before := countFortunes(t, s)
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/fortunes")
		ctx.Request.Header.SetHost("127.0.0.1:8080")
		ctx.Request.Header.SetContentType(contentType)
		for k, v := range map[string]string{"Sec-Fetch-Site": site, "Origin": origin, "Referer": referer} {
			if v != "" {
				ctx.Request.Header.Set(k, v)
			}
		}
		if cookieValue != "" {
			ctx.Request.Header.SetCookie("hotpath_csrf", cookieValue)
		}
		ctx.Request.SetBodyString(body)
		form.Create(&ctx)

		status := ctx.Response.StatusCode()
		added := countFortunes(t, s) - before
		switch status {
		case 303:
			if added != 1 {
				t.Fatalf("303 but %d rows added", added)
			}
			args := ctx.PostArgs()
			if err := p.Verify([]byte(cookieValue), args.Peek(csrf.FieldName)); err != nil {
				t.Fatalf("stored a post whose token does not verify: %v", err)
			}
			if err := p.CheckOrigin(site, origin, referer, "http://127.0.0.1:8080"); err != nil {
				t.Fatalf("stored a cross-origin post: %v", err)
			}
			msg := strings.ReplaceAll(string(args.Peek("message")), "\r\n", "\n")
			if msg == "" || !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > 500 {
				t.Fatalf("stored an invalid message %q", msg)
			}
		case 403, 415, 422:
			if added != 0 {
				t.Fatalf("status %d but %d rows added", status, added)
			}
		default:
			t.Fatalf("status %d for body %q, type %q", status, body, contentType)
		}
	})
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hotpath/hotpath/internal/csrf"
)

// formFuzzSecret is the CSRF key of the fuzzed server, so the fuzz can
// tell a post that should pass from one that should not.
const formFuzzSecret = "form-fuzz-secret-0123456789abcdef"

// FuzzFormPost posts arbitrary bodies, content types, fetch metadata,
// Origin and Referer values and cookies to POST /fortunes of the service
// running in this process. The form must never panic, must answer only
// 303, 403, 415 or 422 (400 for a request fasthttp cannot read), and must
// store one row exactly when it answers 303, which it may do only for a
// post carrying the token issued with its cookie and a valid message.
func FuzzFormPost(f *testing.F) {
	srv, conn := newMemServerWith(f, 0, "--security.csrf_secret="+formFuzzSecret,
		"--security.trusted_origins=https://partner.example", "--limits.anonymous_writes=0")
	db := srv.direct(f)
	exchange := func(tb testing.TB, req string) *http.Response {
		tb.Helper()
		conn.In.WriteString(req)
		err := srv.ServeConn(conn)
		resp, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(conn.Out.Bytes())), nil)
		conn.Out.Reset()
		conn.In.Reset()
		if rerr != nil {
			tb.Fatalf("no answer to %q (%v, serve: %v)", req, rerr, err)
		}
		return resp
	}
	page := exchange(f, "GET /fortunes/new HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
	var cookie string
	for _, c := range page.Cookies() {
		if c.Name == "hotpath_csrf" {
			cookie = c.Value
		}
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(page.Body)
	const field = `name="csrf_token" value="`
	i := strings.Index(body.String(), field)
	if cookie == "" || i < 0 {
		f.Fatalf("the form page gave no cookie or token: %q", body.String())
	}
	rest := body.String()[i+len(field):]
	token := rest[:strings.IndexByte(rest, '"')]
	count := func(t *testing.T) int {
		fs, err := db.Fortunes(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(fs)
	}

	// The server's own check, with its key, for the oracle.
	protector, err := csrf.New([]byte(formFuzzSecret), []string{"https://partner.example"}, false)
	if err != nil {
		f.Fatal(err)
	}
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
	f.Fuzz(func(t *testing.T, form, contentType, site, origin, referer, cookieValue string) {
		// Header values stay on their line: a line break would make another
		// request, which the hostile-input tests cover.
		clean := func(s string) string { return strings.Map(headerByte, s) }
		var req strings.Builder
		req.WriteString("POST /fortunes HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: " + clean(contentType) + "\r\n")
		for k, v := range map[string]string{"Sec-Fetch-Site": site, "Origin": origin, "Referer": referer} {
			if v = clean(v); strings.TrimSpace(v) != "" {
				req.WriteString(k + ": " + v + "\r\n")
			}
		}
		if cookieValue = clean(cookieValue); cookieValue != "" {
			req.WriteString("Cookie: hotpath_csrf=" + cookieValue + "\r\n")
		}
		req.WriteString("Content-Length: " + strconv.Itoa(len(form)) + "\r\n\r\n" + form)
		before := count(t)
		resp := exchange(t, req.String())
		added := count(t) - before
		switch resp.StatusCode {
		case 303:
			if added != 1 {
				t.Fatalf("303 but %d rows added", added)
			}
			args, err := url.ParseQuery(form)
			if err != nil {
				t.Fatalf("stored a post whose body is no form (%v): %q", err, req.String())
			}
			if err := protector.Verify([]byte(cookieValue), []byte(args.Get(csrf.FieldName))); err != nil {
				t.Fatalf("stored a post whose token does not verify (%v): %q", err, req.String())
			}
			if err := protector.CheckOrigin(clean(site), clean(origin), clean(referer), "http://127.0.0.1:8080"); err != nil {
				t.Fatalf("stored a cross-origin post (%v): %q", err, req.String())
			}
			msg := strings.ReplaceAll(args.Get("message"), "\r\n", "\n")
			if msg == "" || !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > 500 {
				t.Fatalf("stored an invalid message %q", msg)
			}
		case 400, 403, 415, 422:
			if added != 0 {
				t.Fatalf("status %d but %d rows added", resp.StatusCode, added)
			}
		default:
			t.Fatalf("status %d for %q", resp.StatusCode, req.String())
		}
	})
}

// headerByte drops what cannot stand in a header value.
func headerByte(r rune) rune {
	if r == '\r' || r == '\n' || r == 0 {
		return -1
	}
	return r
}

package api

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// decodeStatus runs Decode on a request with content type ct and body, and
// returns the status it would answer (200 when the body is accepted).
func decodeStatus(t testing.TB, ct, body string, req Request) (int, *problem.Error) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	if ct != "" {
		ctx.Request.Header.SetContentType(ct)
	}
	ctx.Request.SetBodyString(body)
	err := Decode(&ctx, req)
	if err == nil {
		return 200, nil
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Decode(%q) returned %T %v, want a *problem.Error", body, err, err)
	}
	return pe.Status, pe
}

func TestDecodeStatuses(t *testing.T) {
	const js = "application/json"
	cases := []struct {
		ct, body string
		world    bool // decode a WorldUpdate, else a NewFortune
		want     int
		fields   []string // fields a 422 must name
	}{
		{js, `{"message":"hello"}`, false, 200, nil},
		{"application/json; charset=utf-8", `{"message":"hello"}`, false, 200, nil},
		{"Application/JSON; Charset=UTF-8", `{"message":"hello"}`, false, 200, nil},
		{js, " \n{\"message\":\"tab\\tand\\nnewline\"} \n", false, 200, nil},
		{"", `{"message":"hello"}`, false, 415, nil},
		{"text/plain", `{"message":"hello"}`, false, 415, nil},
		{"application/x-www-form-urlencoded", `message=hello`, false, 415, nil},
		{"application/json; charset=latin1", `{"message":"hello"}`, false, 415, nil},
		{"application/json; foo=bar", `{"message":"hello"}`, false, 415, nil},
		{"application/jsonx", `{"message":"hello"}`, false, 415, nil},
		{js, ``, false, 400, nil},
		{js, `   `, false, 400, nil},
		{js, `null`, false, 400, nil},
		{js, `[]`, false, 400, nil},
		{js, `"message"`, false, 400, nil},
		{js, `42`, false, 400, nil},
		{js, `{`, false, 400, nil},
		{js, `{"message":"a"`, false, 400, nil},
		{js, `{"message":"a"}{"message":"b"}`, false, 400, nil},
		{js, `{"message":"a"} trailing`, false, 400, nil},
		{js, `{"message":42}`, false, 400, nil},
		{js, `{"message":null}`, false, 422, []string{"message"}},
		{js, `{"message":["a"]}`, false, 400, nil},
		{js, `{"message":"a","extra":1}`, false, 400, nil},
		{js, `{"msg":"a"}`, false, 400, nil},
		{js, `{}`, false, 422, []string{"message"}},
		{js, `{"message":""}`, false, 422, []string{"message"}},
		{js, `{"message":"` + strings.Repeat("é", 500) + `"}`, false, 200, nil},
		{js, `{"message":"` + strings.Repeat("é", 501) + `"}`, false, 422, []string{"message"}},
		{js, `{"message":"bell\u0007"}`, false, 422, []string{"message"}},
		{js, `{"message":"nul\u0000"}`, false, 422, []string{"message"}},
		{js, `{"message":"cr\r"}`, false, 422, []string{"message"}},
		{js, `{"message":"del` + "\u007f" + `"}`, false, 422, []string{"message"}},
		{js, `{"message":"c1` + "\u0085" + `"}`, false, 422, []string{"message"}},
		{js, "{\"message\":\"bad \xff utf8\"}", false, 400, nil},
		{js, `{"randomNumber":1}`, true, 200, nil},
		{js, `{"randomNumber":10000}`, true, 200, nil},
		{js, `{"randomNumber":0}`, true, 422, []string{"randomNumber"}},
		{js, `{"randomNumber":10001}`, true, 422, []string{"randomNumber"}},
		{js, `{"randomNumber":-5}`, true, 422, []string{"randomNumber"}},
		{js, `{}`, true, 422, []string{"randomNumber"}},
		{js, `{"randomNumber":"5"}`, true, 400, nil},
		{js, `{"randomNumber":1.5}`, true, 400, nil},
		{js, `{"randomNumber":true}`, true, 400, nil},
		{js, `{"randomNumber":99999999999999999999}`, true, 400, nil},
		{js, `{"randomNumber":5,"id":6}`, true, 400, nil},
		{js, `{"randomNumber":5.0}`, true, 400, nil},
		{js, `{"randomNumber":1e3}`, true, 400, nil},
		// Member names match exactly and once: a proxy or a signature
		// check may read the first of two, or only the exact spelling.
		{js, `{"randomNumber":99999,"randomNumber":5}`, true, 400, nil},
		{js, `{"RANDOMNUMBER":7}`, true, 400, nil},
		{js, `{"randomNumber":99999,"RandomNumber":8}`, true, 400, nil},
		{js, `{"message":"a","message":"b"}`, false, 400, nil},
		{js, `{"Message":"a"}`, false, 400, nil},
		{js, `{"message":"a","x":{"message":"b"}}`, false, 400, nil},
		// Escaped halves of a surrogate pair would be stored as U+FFFD.
		{js, `{"message":"a\ud800b"}`, false, 400, nil},
		{js, `{"message":"a\udc00b"}`, false, 400, nil},
		{js, `{"message":"\udc00\ud800"}`, false, 400, nil},
		{js, `{"message":"end\ud83d"}`, false, 400, nil},
		{js, `{"message":"\ud83d\ude00 \u00e9 \\ud800"}`, false, 200, nil},
		{js, `{"message":"\uFFFD"}`, false, 200, nil},
	}
	for _, c := range cases {
		var req Request = &NewFortune{}
		if c.world {
			req = &WorldUpdate{}
		}
		got, pe := decodeStatus(t, c.ct, c.body, req)
		if got != c.want {
			t.Errorf("Content-Type %q, body %.60q: status %d (%v), want %d", c.ct, c.body, got, pe, c.want)
			continue
		}
		if got == 422 {
			var named []string
			for _, e := range pe.Errors {
				named = append(named, e.Field)
			}
			if strings.Join(named, ",") != strings.Join(c.fields, ",") {
				t.Errorf("body %.60q: 422 names %v, want %v", c.body, named, c.fields)
			}
		}
		if pe != nil && strings.Contains(pe.Detail, "Go ") {
			t.Errorf("body %.60q: detail %q speaks of Go types", c.body, pe.Detail)
		}
	}
}

func TestDecodeKeepsTheMessageExactly(t *testing.T) {
	for _, m := range []string{"' OR '1'='1", "1;DROP TABLE Fortune--", `<script>alert(1)</script>`, "tab\tnew\nline", "日本語 ✓ 🙂"} {
		var f NewFortune
		body, err := jsonString(m)
		if err != nil {
			t.Fatal(err)
		}
		if got, pe := decodeStatus(t, "application/json", `{"message":`+body+`}`, &f); got != 200 || f.Message != m {
			t.Errorf("message %q: status %d (%v), decoded %q", m, got, pe, f.Message)
		}
	}
}

// FuzzDecode feeds arbitrary bodies: Decode must not panic, must answer
// only 400 or 422 for a bad body, and whatever it accepts must satisfy
// every constraint of NewFortune.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{}`, `{"message":""}`, `[]`, `null`, `{"message":"\u0000"}`,
		`{"message":"a","message":"b"}`, `{"MESSAGE":"x"}`, "{\"message\":\"\xff\"}", `{"message":"\ud800"}`, `{"a":{"b":[1,2,{}]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req NewFortune
		status, pe := decodeStatus(t, "application/json", body, &req)
		switch status {
		case 200:
			m := req.Message
			if m == "" || !utf8.ValidString(m) || utf8.RuneCountInString(m) > MaxMessageLen {
				t.Fatalf("accepted %q with message %q", body, m)
			}
			lower := strings.ToLower(body)
			if strings.ContainsRune(m, utf8.RuneError) && !strings.ContainsRune(body, utf8.RuneError) && !strings.Contains(lower, `\ufffd`) {
				t.Fatalf("accepted %q and stored %q: a U+FFFD the client did not send", body, m)
			}
			if strings.Count(lower, `"message"`) > 1 && !strings.Contains(m, "message") {
				t.Fatalf("accepted %q: the member named twice", body)
			}
			for _, r := range m {
				if r < 0x20 && r != '\t' && r != '\n' {
					t.Fatalf("accepted %q with a control character in %q", body, m)
				}
			}
		case 400, 422:
		default:
			t.Fatalf("body %q: status %d (%v)", body, status, pe)
		}
	})
}

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// TestDecodeDetailsBoundWhatTheyRepeat: a detail may name an unknown field,
// cut to maxEchoedName bytes, and never quotes a value.
func TestDecodeDetailsBoundWhatTheyRepeat(t *testing.T) {
	const js = "application/json"
	long := strings.Repeat("é", 400)
	cases := []struct {
		body     string
		contains string // must be in the detail
		absent   string // must not be
	}{
		{`{"message":"a","mesage":1}`, `"mesage"`, ""},
		{`{"message":"a","` + long + `":1}`, "é…", strings.Repeat("é", maxEchoedName/2+1)},
		{`{"randomNumber":1` + strings.Repeat("0", 400) + `}`, "an integer", "000"},
		{`{"randomNumber":true}`, "an integer", "true"},
	}
	for _, c := range cases {
		var req Request = &NewFortune{}
		if strings.Contains(c.body, "randomNumber") {
			req = &WorldUpdate{}
		}
		status, pe := decodeStatus(t, js, c.body, req)
		if status != 400 {
			t.Errorf("body %.60q: status %d, want 400", c.body, status)
			continue
		}
		if !strings.Contains(pe.Detail, c.contains) || (c.absent != "" && strings.Contains(pe.Detail, c.absent)) {
			t.Errorf("body %.60q: detail %q, want it to hold %.40q and not %.40q", c.body, pe.Detail, c.contains, c.absent)
		}
		if !utf8.ValidString(pe.Detail) || len(pe.Detail) > 200 {
			t.Errorf("body %.60q: detail of %d bytes (valid UTF-8 %v), want a short valid one", c.body, len(pe.Detail), utf8.ValidString(pe.Detail))
		}
	}
}

// BenchmarkDecodeEscapes decodes a body near max_body_size made of \u
// escapes, the input that made go-json's stream decoder quadratic.
func BenchmarkDecodeEscapes(b *testing.B) {
	body := []byte(`{"message":"` + strings.Repeat(`\u0041`, 170000) + `"}`)
	for b.Loop() {
		var f NewFortune
		if err := decodeJSON(body, &f); err != nil {
			b.Fatal(err)
		}
	}
}

package typed

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// newFortune and worldUpdate are today's two request bodies, declared with
// tags: the rules internal/api enforces by hand.
type newFortune struct {
	Message string `json:"message" minLength:"1" maxLength:"500" pattern:"^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"`
}

type worldUpdate struct {
	RandomNumber int32 `json:"randomNumber" minimum:"1" maximum:"10000"`
}

type widget struct {
	Name string   `json:"name" minLength:"1" maxLength:"50"`
	Qty  int      `json:"qty" minimum:"1" maximum:"100"`
	Tags []string `json:"tags" maxItems:"5" minLength:"1"`
}

type address struct {
	City string `json:"city" minLength:"1"`
	Zip  string `json:"zip,omitempty" pattern:"^[0-9]{5}$"`
}

type line struct {
	Name  string `json:"name"`
	Count uint8  `json:"count" minimum:"1"`
}

type order struct {
	Address  address           `json:"address"`
	Lines    []line            `json:"lines" minItems:"1"`
	Note     *string           `json:"note"`
	Labels   map[string]string `json:"labels,omitempty" maxLength:"3"`
	Due      time.Time         `json:"due,omitempty"`
	Price    float64           `json:"price,omitempty" minimum:"0"`
	Express  bool              `json:"express,omitempty"`
	Ref      *address          `json:"ref,omitempty"`
	Priority string            `json:"priority,omitempty" enum:"low,high"`
}

func compile[T any](t testing.TB) *Input {
	t.Helper()
	in, err := CompileInput(reflect.TypeFor[T]())
	if err != nil {
		t.Fatalf("CompileInput(%s): %v", reflect.TypeFor[T](), err)
	}
	return in
}

// request builds a request context; user values are path parameters.
func request(ct, body, query string, headers map[string]string, path map[string]string) *fasthttp.RequestCtx {
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/x?" + query)
	if ct != "" {
		rc.Request.Header.SetContentType(ct)
	}
	for k, v := range headers {
		rc.Request.Header.Add(k, v)
	}
	for k, v := range path {
		rc.SetUserValue(k, v)
	}
	rc.Request.SetBodyString(body)
	return &rc
}

// run decodes and returns the status Decode would answer (200 when it
// accepts) and the problem.
func run(t testing.TB, in *Input, rc *fasthttp.RequestCtx, dst any) (int, *problem.Error) {
	t.Helper()
	err := in.Decode(rc, dst)
	if err == nil {
		return 200, nil
	}
	var pe *problem.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Decode returned %T %v, want a *problem.Error", err, err)
	}
	return pe.Status, pe
}

func fields(pe *problem.Error) string {
	if pe == nil {
		return ""
	}
	var named []string
	for _, e := range pe.Errors {
		named = append(named, e.Field)
	}
	return strings.Join(named, ",")
}

// TestDecodeKeepsTodaysStatuses replays internal/api's decoder cases on
// the tag-declared twins of its bodies.
func TestDecodeKeepsTodaysStatuses(t *testing.T) {
	const js = "application/json"
	fortune, world := compile[newFortune](t), compile[worldUpdate](t)
	cases := []struct {
		ct, body string
		world    bool
		want     int
		fields   string // fields a 422 names
	}{
		{js, `{"message":"hello"}`, false, 200, ""},
		{"application/json; charset=utf-8", `{"message":"hello"}`, false, 200, ""},
		{"Application/JSON; Charset=UTF-8", `{"message":"hello"}`, false, 200, ""},
		{`application/json;charset="utf-8"`, `{"message":"hello"}`, false, 200, ""},
		{js, " \n{\"message\":\"tab\\tand\\nnewline\"} \n", false, 200, ""},
		{"", `{"message":"hello"}`, false, 415, ""},
		{"text/plain", `{"message":"hello"}`, false, 415, ""},
		{"application/x-www-form-urlencoded", `message=hello`, false, 415, ""},
		{"application/json; charset=latin1", `{"message":"hello"}`, false, 415, ""},
		{"application/json; foo=bar", `{"message":"hello"}`, false, 415, ""},
		{"application/jsonx", `{"message":"hello"}`, false, 415, ""},
		{js, ``, false, 400, ""},
		{js, `   `, false, 400, ""},
		{js, `null`, false, 400, ""},
		{js, `[]`, false, 400, ""},
		{js, `"message"`, false, 400, ""},
		{js, `42`, false, 400, ""},
		{js, `{`, false, 400, ""},
		{js, `{"message":"a"`, false, 400, ""},
		{js, `{"message":"a"}{"message":"b"}`, false, 400, ""},
		{js, `{"message":"a"} trailing`, false, 400, ""},
		{js, `{"message":42}`, false, 400, "message"},
		{js, `{"message":null}`, false, 422, "message"}, // null where no null fits is the member left out
		{js, `{"message":["a"]}`, false, 400, "message"},
		{js, `{"message":"a","extra":1}`, false, 400, "extra"},
		{js, `{"msg":"a"}`, false, 400, "msg"},
		{js, `{}`, false, 422, "message"},
		{js, `{"message":""}`, false, 422, "message"},
		{js, `{"message":"` + strings.Repeat("é", 500) + `"}`, false, 200, ""},
		{js, `{"message":"` + strings.Repeat("é", 501) + `"}`, false, 422, "message"},
		{js, `{"message":"bell\u0007"}`, false, 422, "message"},
		{js, `{"message":"nul\u0000"}`, false, 422, "message"},
		{js, `{"message":"cr\r"}`, false, 422, "message"},
		{js, `{"message":"del` + "\u007f" + `"}`, false, 422, "message"},
		{js, `{"message":"c1` + "\u0085" + `"}`, false, 422, "message"},
		{js, "{\"message\":\"bad \xff utf8\"}", false, 400, "message"},
		{js, `{"randomNumber":1}`, true, 200, ""},
		{js, `{"randomNumber":10000}`, true, 200, ""},
		{js, `{"randomNumber":0}`, true, 422, "randomNumber"},
		{js, `{"randomNumber":10001}`, true, 422, "randomNumber"},
		{js, `{"randomNumber":-5}`, true, 422, "randomNumber"},
		{js, `{}`, true, 422, "randomNumber"},
		{js, `{"randomNumber":"5"}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":1.5}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":true}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":99999999999999999999}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":5,"id":6}`, true, 400, "id"},
		{js, `{"randomNumber":5.0}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":1e3}`, true, 400, "randomNumber"},
		{js, `{"randomNumber":99999,"randomNumber":5}`, true, 400, "randomNumber"},
		{js, `{"RANDOMNUMBER":7}`, true, 400, "RANDOMNUMBER"},
		{js, `{"randomNumber":99999,"RandomNumber":8}`, true, 400, "RandomNumber"},
		{js, `{"message":"a","message":"b"}`, false, 400, "message"},
		{js, `{"message":"a","m\u0065ssage":"b"}`, false, 400, "message"},
		{js, `{"Message":"a"}`, false, 400, "Message"},
		{js, `{"message":"a","x":{"message":"b"}}`, false, 400, "x"},
		{js, `{"message":"a\ud800b"}`, false, 400, "message"},
		{js, `{"message":"a\udc00b"}`, false, 400, "message"},
		{js, `{"message":"\udc00\ud800"}`, false, 400, "message"},
		{js, `{"message":"end\ud83d"}`, false, 400, "message"},
		{js, `{"message":"\ud83d\ude00 \u00e9 \\ud800"}`, false, 200, ""},
		{js, `{"message":"\uFFFD"}`, false, 200, ""},
	}
	for _, c := range cases {
		in, dst := fortune, any(&newFortune{})
		if c.world {
			in, dst = world, &worldUpdate{}
		}
		got, pe := run(t, in, request(c.ct, c.body, "", nil, nil), dst)
		named := fields(pe)
		if got == 400 && named == "" && pe != nil && c.fields != "" && strings.Contains(pe.Detail, strconv.Quote(c.fields)) {
			named = c.fields // a 400 names its field in the detail; errors[] is a 422's
		}
		if got != c.want || named != c.fields || (got == 400 && fields(pe) != "") {
			t.Errorf("Content-Type %q, body %.60q: status %d naming %q (%v), want %d naming %q", c.ct, c.body, got, fields(pe), pe, c.want, c.fields)
		}
		if pe != nil && strings.Contains(pe.Detail, "Go ") {
			t.Errorf("body %.60q: detail %q speaks of Go types", c.body, pe.Detail)
		}
	}
}

// TestDecodeRefusalTexts pins the detail of each kind of refusal.
func TestDecodeRefusalTexts(t *testing.T) {
	const js = "application/json"
	in := compile[order](t)
	ok := `"address":{"city":"Oslo"},"lines":[{"name":"a","count":1}],"note":null`
	cases := []struct {
		body   string
		status int
		detail string
		errs   string // field: detail; ...
	}{
		{`{` + ok + `,"address2":1}`, 400, `the body has an unknown field "address2"`, ""},
		{`{"address":{"city":"Oslo","town":1},"lines":[],"note":null}`, 400, `the body has an unknown field "address.town"`, ""},
		{`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":1},{"name":"b","count":1},{"nam":"c"}],"note":null}`, 400, `the body has an unknown field "lines[2].nam"`, ""},
		{`{"address":{"city":"Oslo","city":"Bergen"},"lines":[],"note":null}`, 400, `the body repeats the field "address.city"`, ""},
		{`{` + ok + `,"labels":{"a":"x","a":"y"}}`, 400, `the body repeats the field "labels.a"`, ""},
		{`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":"1"}],"note":null}`, 400, `the field "lines[0].count" must be an integer`, ""},
		{`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":256}],"note":null}`, 400, `the field "lines[0].count" must be an integer from 0 to 255`, ""},
		{`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":-1}],"note":null}`, 400, `the field "lines[0].count" must be an integer from 0 to 255`, ""},
		{`{"address":"Oslo","lines":[],"note":null}`, 400, `the field "address" must be an object`, ""},
		{`{"address":null,"lines":[],"note":null}`, 422, "the request has invalid fields", "lines: must have at least 1 items; address: is required"},
		{`{"address":{"city":"Oslo"},"lines":{},"note":null}`, 400, `the field "lines" must be an array`, ""},
		{`{` + ok + `,"note":5}`, 400, `the body repeats the field "note"`, ""},
		{`{"address":{"city":"Oslo"},"lines":[],"note":5}`, 400, `the field "note" must be a string`, ""},
		{`{` + ok + `,"express":"yes"}`, 400, `the field "express" must be true or false`, ""},
		{`{` + ok + `,"price":"1"}`, 400, `the field "price" must be a number`, ""},
		{`{` + ok + `,"price":1e999}`, 400, `the field "price" must be a number a float64 holds`, ""},
		{`{` + ok + `,"due":"tomorrow"}`, 400, `the field "due" must be an RFC 3339 date-time string`, ""},
		{`{` + ok + `,"due":1}`, 400, `the field "due" must be an RFC 3339 date-time string`, ""},
		{`{` + ok + `,"labels":{"k":"\ud800"}}`, 400, `the field "labels.k" escapes half of a UTF-16 surrogate pair, which is no character`, ""},
		{"{" + ok + ",\"labels\":{\"k\":\"\xff\"}}", 400, `the field "labels.k" is not valid UTF-8`, ""},
		{"{\"\xff\":1}", 400, `the body is not valid UTF-8`, ""},
		{`{"\udc00":1}`, 400, `the body escapes half of a UTF-16 surrogate pair, which is no character`, ""},
		{`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":1},]}`, 400, detailInvalid, ""},
		{`{"address":{"city":"Oslo"},"lines":[1]}`, 400, `the field "lines[0]" must be an object`, ""},
		{`{` + ok + `} {}`, 400, detailInvalid, ""},
		{`{` + ok + `}]`, 400, detailInvalid, ""},
		{`{"address":{"city":"Oslo"},"lines":[],"note":"\q"}`, 400, detailInvalid, ""},
		// Constraints: every violation, in document order, required ones when their object closes.
		{`{"address":{"zip":"1"},"lines":[],"note":null,"labels":{"b":"long","a":"ok"},"priority":"mid","price":-1}`, 422, "the request has invalid fields",
			"address.zip: must match the pattern ^[0-9]{5}$; address.city: is required; lines: must have at least 1 items; labels.b: must be at most 3 characters; priority: must be one of low, high; price: must be at least 0"},
		{`{"lines":[{"name":"a","count":0}]}`, 422, "the request has invalid fields",
			"lines[0].count: must be at least 1; address: is required"},
		{`{` + ok + `,"ref":{"zip":"12345"}}`, 422, "the request has invalid fields", "ref.city: is required"},
		{`{` + ok + `,"ref":null,"labels":null}`, 200, "", ""},
		{`{"address":{"city":"Oslo"},"lines":null,"note":"n"}`, 200, "", ""},
	}
	for _, c := range cases {
		var o order
		got, pe := run(t, in, request(js, c.body, "", nil, nil), &o)
		var detail string
		var errs []string
		if pe != nil {
			detail = pe.Detail
			for _, e := range pe.Errors {
				errs = append(errs, e.Field+": "+e.Detail)
			}
		}
		if got != c.status || detail != c.detail || strings.Join(errs, "; ") != c.errs {
			t.Errorf("body %s:\n got  %d %q [%s]\n want %d %q [%s]", c.body, got, detail, strings.Join(errs, "; "), c.status, c.detail, c.errs)
		}
	}
}

func TestDecodeFillsEveryKind(t *testing.T) {
	in := compile[order](t)
	body := `{"address":{"city":"Oslo","zip":"01234"},"lines":[{"name":"a","count":1},{"name":"b\u00e9","count":255}],` +
		`"note":"n","labels":{"x":"1"},"due":"2024-05-06T07:08:09+02:00","price":1.5,"express":true,"ref":{"city":"c"},"priority":"low"}`
	var o order
	if got, pe := run(t, in, request("application/json", body, "", nil, nil), &o); got != 200 {
		t.Fatalf("status %d (%v)", got, pe)
	}
	note := "n"
	due := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("", 2*3600))
	want := order{
		Address: address{City: "Oslo", Zip: "01234"},
		Lines:   []line{{"a", 1}, {"bé", 255}},
		Note:    &note, Labels: map[string]string{"x": "1"},
		Price: 1.5, Express: true, Ref: &address{City: "c"}, Priority: "low",
	}
	if !o.Due.Equal(due) {
		t.Errorf("due %v, want %v", o.Due, due)
	}
	o.Due = time.Time{}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", o, want)
	}
	if cap(o.Lines) != 2 {
		t.Errorf("lines has cap %d, want the exact 2", cap(o.Lines))
	}
}

// TestDecodeZeroesAPooledValue: a value from a pool keeps nothing of its
// last use.
func TestDecodeZeroesAPooledValue(t *testing.T) {
	in := compile[order](t)
	note := "old"
	o := order{Note: &note, Price: 9, Labels: map[string]string{"old": "x"}}
	body := `{"address":{"city":"Oslo"},"lines":[{"name":"a","count":1}],"note":null}`
	if got, pe := run(t, in, request("application/json", body, "", nil, nil), &o); got != 200 {
		t.Fatalf("status %d (%v)", got, pe)
	}
	if o.Note != nil || o.Price != 0 || o.Labels != nil {
		t.Errorf("after decoding %s: note %v, price %v, labels %v; want all zero", body, o.Note, o.Price, o.Labels)
	}
}

func TestDecodeEmptyArrayIsNotNull(t *testing.T) {
	in := compile[widget](t)
	for body, wantNil := range map[string]bool{`{"name":"a","qty":1,"tags":[]}`: false, `{"name":"a","qty":1,"tags":null}`: true} {
		var w widget
		if got, pe := run(t, in, request("application/json", body, "", nil, nil), &w); got != 200 {
			t.Fatalf("%s: status %d (%v)", body, got, pe)
		}
		if (w.Tags == nil) != wantNil || len(w.Tags) != 0 {
			t.Errorf("%s: tags %#v, want nil %v", body, w.Tags, wantNil)
		}
	}
}

type node8 struct {
	Kids []node8 `json:"kids,omitempty"`
}

func TestDecodeRefusesDeepNesting(t *testing.T) {
	in := compile[node8](t)
	// Each kid is two levels, an object and its array.
	deepest := strings.Repeat(`{"kids":[`, MaxDepth/2) + strings.Repeat(`]}`, MaxDepth/2)
	var n node8
	if got, pe := run(t, in, request("application/json", deepest, "", nil, nil), &n); got != 200 {
		t.Errorf("%d levels: status %d (%v), want 200", MaxDepth, got, pe)
	}
	deeper := strings.Repeat(`{"kids":[`, MaxDepth/2) + `{}` + strings.Repeat(`]}`, MaxDepth/2)
	got, pe := run(t, in, request("application/json", deeper, "", nil, nil), &n)
	if got != 400 || pe.Detail != "the body nests objects and arrays deeper than 32 levels" {
		t.Errorf("%d levels: status %d (%v), want 400 naming the limit", MaxDepth+1, got, pe)
	}
}

// TestDecodeCutsWhatItEchoes: an unknown name is echoed at most 64 bytes,
// cut on a rune boundary; values never are.
func TestDecodeCutsWhatItEchoes(t *testing.T) {
	in := compile[newFortune](t)
	long := strings.Repeat("é", 400)
	var f newFortune
	got, pe := run(t, in, request("application/json", `{"message":"a","`+long+`":1}`, "", nil, nil), &f)
	if got != 400 || !strings.Contains(pe.Detail, "é…") || strings.Contains(pe.Detail, strings.Repeat("é", maxEchoed/2+1)) || len(pe.Detail) > 120 {
		t.Errorf("status %d, detail %q: want a 400 echoing at most %d bytes of the name", got, pe.Detail, maxEchoed)
	}
	secret := "s3cr3t-value"
	got, pe = run(t, compile[worldUpdate](t), request("application/json", `{"randomNumber":"`+secret+`"}`, "", nil, nil), &worldUpdate{})
	if got != 400 || strings.Contains(pe.Detail, secret) {
		t.Errorf("status %d, detail %q: echoes the value", got, pe.Detail)
	}
}

type pageQuery struct {
	Limit  int     `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Page size."`
	After  int32   `query:"after" minimum:"0"`
	Sort   string  `query:"sort" enum:"id,name" default:"id"`
	Cursor *string `query:"cursor"`
	Must   bool    `query:"must" required:"true"`
	Trace  *uint16 `header:"X-Trace"`
	Ratio  float32 `query:"ratio" minimum:"0" maximum:"1"`
}

func TestDecodeQueryAndHeaders(t *testing.T) {
	in := compile[pageQuery](t)
	cases := []struct {
		query   string
		headers map[string]string
		status  int
		errs    string
		check   func(q pageQuery) bool
	}{
		{"must=true", nil, 200, "", func(q pageQuery) bool {
			return q.Limit == 20 && q.After == 0 && q.Sort == "id" && q.Cursor == nil && q.Must && q.Trace == nil
		}},
		{"must=false&limit=5&after=7&sort=name&cursor=abc&ratio=0.5", map[string]string{"x-trace": "42"}, 200, "", func(q pageQuery) bool {
			return q.Limit == 5 && q.After == 7 && q.Sort == "name" && *q.Cursor == "abc" && !q.Must && *q.Trace == 42 && q.Ratio == 0.5
		}},
		{"", nil, 422, "must: is required", nil},
		{"must=yes", nil, 422, "must: must be true or false", nil},
		{"must=true&limit=0", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&limit=101", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&limit=+5", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&limit=5.0", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&limit=", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&limit=99999999999999999999", nil, 422, "limit: must be an integer from 1 to 100", nil},
		{"must=true&after=-1", nil, 422, "after: must be at least 0", nil},
		{"must=true&after=x", nil, 422, "after: must be an integer from 0 to 2147483647", nil},
		{"must=true&sort=size", nil, 422, "sort: must be one of id, name", nil},
		{"must=true&ratio=2", nil, 422, "ratio: must be from 0 to 1", nil},
		{"must=true&ratio=NaN", nil, 422, "ratio: must be a number: from 0 to 1", nil},
		{"must=true&cursor=%ff", nil, 422, "cursor: must be valid UTF-8", nil},
		{"must=true&limit=1&limit=2", nil, 422, "limit: must be given once", nil},
		{"must=true", map[string]string{"X-Trace": "70000"}, 422, "X-Trace: must be an integer from 0 to 65535", nil},
		{"limit=0&sort=x", map[string]string{"X-Trace": "-"}, 422, "limit: must be an integer from 1 to 100; sort: must be one of id, name; must: is required; X-Trace: must be an integer from 0 to 65535", nil},
	}
	for _, c := range cases {
		var q pageQuery
		got, pe := run(t, in, request("", "", c.query, c.headers, nil), &q)
		var errs []string
		if pe != nil {
			for _, e := range pe.Errors {
				errs = append(errs, e.Field+": "+e.Detail)
			}
		}
		if got != c.status || strings.Join(errs, "; ") != c.errs {
			t.Errorf("query %q headers %v: %d [%s], want %d [%s]", c.query, c.headers, got, strings.Join(errs, "; "), c.status, c.errs)
		}
		if got == 200 && c.check != nil && !c.check(q) {
			t.Errorf("query %q headers %v: decoded %+v", c.query, c.headers, q)
		}
	}
}

type worldPath struct {
	ID    int32  `path:"id" minimum:"1" maximum:"10000"`
	Slug  string `path:"slug" maxLength:"8"`
	Delta int8   `path:"delta"`
	On    bool   `path:"on"`
}

func TestDecodePathParameters(t *testing.T) {
	in := compile[worldPath](t)
	ok := map[string]string{"id": "7", "slug": "abc", "delta": "-3", "on": "true"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		path   map[string]string
		status int
		detail string
	}{
		{ok, 200, ""},
		{with("id", "0007"), 200, ""},
		{with("id", "x"), 400, "the id in the path must be a decimal number"},
		{with("id", "-1"), 404, "no resource with this id"}, // a signed type reads the '-'
		{with("id", "1-"), 400, "the id in the path must be a decimal number"},
		{with("id", "+1"), 400, "the id in the path must be a decimal number"},
		{with("id", " 1"), 400, "the id in the path must be a decimal number"},
		{with("id", ""), 400, "the id in the path must be a decimal number"},
		{with("id", "0"), 404, "no resource with this id"},
		{with("id", "10001"), 404, "no resource with this id"},
		{with("id", "99999999999999999999999"), 404, "no resource with this id"},
		{with("delta", "-129"), 404, "no resource with this delta"},
		{with("delta", "--1"), 400, "the delta in the path must be a decimal number"},
		{with("slug", "toolongslug"), 404, "no resource with this slug"},
		{with("slug", "\xff"), 400, "the slug in the path must be valid UTF-8"},
		{with("on", "yes"), 400, "the on in the path must be true or false"},
	}
	for _, c := range cases {
		var p worldPath
		got, pe := run(t, in, request("", "", "", nil, c.path), &p)
		detail := ""
		if pe != nil {
			detail = pe.Detail
		}
		if got != c.status || detail != c.detail {
			t.Errorf("path %v: %d %q, want %d %q", c.path, got, detail, c.status, c.detail)
		}
	}
	var p worldPath
	run(t, in, request("", "", "", nil, ok), &p)
	if p != (worldPath{ID: 7, Slug: "abc", Delta: -3, On: true}) {
		t.Errorf("decoded %+v", p)
	}
}

// TestDecodeStructuralRefusalWinsOverViolations: 422s wait until every
// value is read; a 400 anywhere is answered instead.
func TestDecodeStructuralRefusalWinsOverViolations(t *testing.T) {
	type in struct {
		Limit int    `query:"limit" maximum:"10"`
		Name  string `json:"name" minLength:"1"`
	}
	plan := compile[in](t)
	var v in
	if got, pe := run(t, plan, request("application/json", `{"name":""}`, "limit=11", nil, nil), &v); got != 422 || fields(pe) != "limit,name" {
		t.Errorf("status %d naming %q, want 422 naming limit,name", got, fields(pe))
	}
	if got, pe := run(t, plan, request("application/json", `{"name":1}`, "limit=11", nil, nil), &v); got != 400 || fields(pe) != "" || !strings.Contains(pe.Detail, `"name"`) {
		t.Errorf("status %d, errors %q, detail %q; want 400 whose detail names name and no errors[] (those are a 422's)", got, fields(pe), pe.Detail)
	}
	if got, _ := run(t, plan, request("text/plain", `{"name":""}`, "limit=11", nil, nil), &v); got != 415 {
		t.Errorf("status %d, want 415", got)
	}
}

func TestDecodeRefusesTheWrongDestination(t *testing.T) {
	in := compile[widget](t)
	for _, dst := range []any{widget{}, &order{}, (*widget)(nil), nil} {
		if err := in.Decode(request("application/json", `{}`, "", nil, nil), dst); err == nil {
			t.Errorf("Decode into %T accepted", dst)
		}
	}
}

// TestDecodeIsSafeForConcurrentUse runs one plan from many goroutines;
// go test -race checks the pools and the plan are shared safely.
func TestDecodeIsSafeForConcurrentUse(t *testing.T) {
	in := compile[order](t)
	body := `{"address":{"city":"Oslo"},"lines":[{"name":"a","count":1},{"name":"b","count":2}],"note":"n","labels":{"k":"v"}}`
	done := make(chan error)
	for range 8 {
		go func() {
			var err error
			for range 200 {
				var o order
				if err = in.Decode(request("application/json", body, "", nil, nil), &o); err != nil {
					break
				}
				if len(o.Lines) != 2 || o.Lines[1].Name != "b" || o.Labels["k"] != "v" {
					err = errors.New("decoded " + o.Lines[0].Name)
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestDecodeLongArray(t *testing.T) {
	in := compile[widget](t)
	var w widget
	body := `{"name":"a","qty":1,"tags":[` + strings.Repeat(`"t",`, 2*maxPooledItems) + `"t"]}`
	got, pe := run(t, in, request("application/json", body, "", nil, nil), &w)
	if got != 422 || len(w.Tags) != 2*maxPooledItems+1 || fields(pe) != "tags" {
		t.Errorf("status %d naming %q, %d tags; want 422 naming tags (maxItems 5), all %d read", got, fields(pe), len(w.Tags), 2*maxPooledItems+1)
	}
}

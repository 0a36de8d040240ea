package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// exchange is one line the reference service's tests record with
// HOTPATH_TEST_EXCHANGES (cmd/hotpath/exchanges_test.go).
type exchange struct {
	Method     string      `json:"method"`
	URL        string      `json:"url"`
	Header     http.Header `json:"header"`
	Body       []byte      `json:"body"`
	Status     int         `json:"status"`
	RespHeader http.Header `json:"resp_header"`
	RespBody   []byte      `json:"resp_body"`
}

// apiTests are the reference service's tests that speak to /api/v1: the
// resources, their conditional and idempotent requests, the injection
// payloads, the caps, and the fetches of the document itself.
const apiTests = "TestAPI|TestIdempotency|TestConditional|TestInjection|TestMaxFortunes|TestOpenAPI|TestFailedToken|TestTokenWrites"

// TestReferenceServiceTrafficFollowsItsDocument runs the reference
// service's API tests with every exchange recorded, then checks each
// against the OpenAPI document the service served, with libopenapi-validator:
// every answer must be one the document describes (status, headers, body
// schema); a request the document calls valid must not have been refused
// for its form (400, 415) or its fields (422 naming them), and one it calls
// invalid must not have been served. The refusals the schema cannot
// express are expected and counted: a member named twice, text that is not
// UTF-8 (raw or through a lone surrogate escape), an integer written with a
// fraction or an exponent (JSON Schema calls 1.0 an integer), a path id
// with a sign or a fraction, and a header sent twice.
func TestReferenceServiceTrafficFollowsItsDocument(t *testing.T) {
	file := filepath.Join(t.TempDir(), "exchanges.jsonl")
	run := exec.Command("go", "test", "-count=1", "-run", apiTests, "./cmd/hotpath")
	run.Dir = "../../.."
	run.Env = append(os.Environ(), "HOTPATH_TEST_EXCHANGES="+file)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the reference service's API tests failed: %v\n%s", err, out)
	}
	exchanges := readExchanges(t, file)
	var doc []byte
	for _, x := range exchanges {
		if strings.HasPrefix(x.URL, "/api/v1/openapi.json") && x.Status == 200 {
			doc = x.RespBody
		}
	}
	if doc == nil || len(exchanges) < 100 {
		t.Fatalf("recorded %d exchanges and the document %v; the tests or the recorder broke", len(exchanges), doc != nil)
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("the served document: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("the served document is not valid OpenAPI 3.1: %s", messages(errs))
	}

	checked, expected := 0, map[string]int{}
	for _, x := range exchanges {
		if strings.HasPrefix(x.URL, "/api/v1/openapi.json") {
			continue // served by a route the document leaves out
		}
		checked++
		req, resp := x.request(), x.response()
		valid, reqErrs := v.ValidateHttpRequest(req)
		req = x.request()
		if ok, respErrs := v.ValidateHttpResponse(req, resp); !ok {
			t.Errorf("%s %s → %d %.120s: the answer is not as documented: %s", x.Method, x.URL, x.Status, x.RespBody, messages(respErrs))
		}
		switch {
		case valid && refusedForItsForm(x):
			if why := inexpressible(x); why != "" {
				expected[why]++
				continue
			}
			t.Errorf("%s %s %.120q: valid by the document, refused %d: %.160s", x.Method, x.URL, x.Body, x.Status, x.RespBody)
		case !valid && x.Status < 300:
			t.Errorf("%s %s %.120q: invalid by the document (%s), served %d", x.Method, x.URL, x.Body, messages(reqErrs), x.Status)
		}
	}
	t.Logf("%d exchanges checked against the served document; refusals the schema cannot express: %v", checked, expected)
}

func readExchanges(t *testing.T, file string) []exchange {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("no exchanges recorded: %v", err)
	}
	defer f.Close()
	var out []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var x exchange
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatalf("exchange %q: %v", sc.Bytes(), err)
		}
		out = append(out, x)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (x exchange) request() *http.Request {
	req, err := http.NewRequest(x.Method, "http://hotpath"+x.URL, bytes.NewReader(x.Body))
	if err != nil {
		panic(err) // recorded from a request that was sent
	}
	req.Header = x.Header.Clone()
	return req
}

func (x exchange) response() *http.Response {
	return &http.Response{StatusCode: x.Status, Header: x.RespHeader, Body: io.NopCloser(bytes.NewReader(x.RespBody))}
}

// refusedForItsForm: a 400 or 415, or a 422 that names fields (a 422
// without errors[] is a reused Idempotency-Key: state, not form).
func refusedForItsForm(x exchange) bool {
	switch x.Status {
	case 400, 415:
		return true
	case 422:
		var p struct{ Errors []json.RawMessage }
		return json.Unmarshal(x.RespBody, &p) == nil && len(p.Errors) > 0
	}
	return false
}

// inexpressible names the refusals JSON Schema cannot state, from what the
// server said.
func inexpressible(x exchange) string {
	var p struct{ Detail string }
	_ = json.Unmarshal(x.RespBody, &p)
	switch d := p.Detail; {
	case strings.Contains(d, "repeats the field"):
		return "repeated member"
	case strings.Contains(d, "UTF-8"), strings.Contains(d, "surrogate"):
		return "not UTF-8"
	case strings.Contains(d, "must be an integer") && bytes.ContainsAny(x.Body, ".eE"):
		return "integer with a fraction or exponent"
	case strings.Contains(d, "in the path must be a decimal number") && strings.ContainsAny(x.URL, "+-.eE"):
		// A validator reads "+1" or "1.0" as the number 1; the path names
		// resources by their digits.
		return "path integer with a sign, fraction or exponent"
	case strings.Contains(d, "send one Idempotency-Key header, not several"):
		return "a header sent twice"
	}
	return ""
}

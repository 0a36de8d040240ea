package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestMain runs the tests, then checks every request they sent and every
// answer they got against the OpenAPI document the service served, with
// a maintained OpenAPI 3.1 validator: what the service does and what its
// document says must agree.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := recorder.check(); err != nil {
			fmt.Fprintln(os.Stderr, "conformance:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// exchange is one request a test sent and the answer it got.
type exchange struct {
	req        *http.Request
	body, resp []byte
	answer     *http.Response
}

// recording is a transport that keeps every exchange.
type recording struct {
	mu   sync.Mutex
	seen []exchange
	doc  []byte // the last OpenAPI document served
}

var recorder = &recording{}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path == "/v1/openapi.json" && resp.StatusCode == 200 {
		r.doc = answer
	} else if strings.HasPrefix(req.URL.Path, "/v1/") {
		r.seen = append(r.seen, exchange{req: req, body: body, resp: answer, answer: resp})
	}
	return resp, nil
}

// check validates the recorded exchanges: every answer must be one the
// document describes; a request the document calls valid must not have
// been refused as malformed or invalid (400, 415, 422), and one it calls
// invalid must not have been served (2xx).
func (r *recording) check() error {
	if r.doc == nil || len(r.seen) == 0 {
		return nil // a run of a few tests: nothing to compare
	}
	doc, err := libopenapi.NewDocument(r.doc)
	if err != nil {
		return err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return fmt.Errorf("the served document: %v", errs)
	}
	var bad []string
	for _, x := range r.seen {
		x.req.Body = io.NopCloser(bytes.NewReader(x.body))
		valid, reqErrs := v.ValidateHttpRequest(x.req)
		x.req.Body = io.NopCloser(bytes.NewReader(x.body))
		x.answer.Body = io.NopCloser(bytes.NewReader(x.resp))
		if ok, respErrs := v.ValidateHttpResponse(x.req, x.answer); !ok {
			bad = append(bad, fmt.Sprintf("%s %s → %d: the answer is not as documented: %v", x.req.Method, x.req.URL, x.answer.StatusCode, respErrs[0].Message))
		}
		switch s := x.answer.StatusCode; {
		case valid && (s == 400 || s == 415 || s == 422):
			bad = append(bad, fmt.Sprintf("%s %s %.80s: valid by the document, refused with %d", x.req.Method, x.req.URL, x.body, s))
		case !valid && s < 300:
			bad = append(bad, fmt.Sprintf("%s %s %.80s: invalid by the document (%s), served with %d", x.req.Method, x.req.URL, x.body, reqErrs[0].Message, s))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d exchanges disagree with the document:\n%s", len(bad), len(r.seen), strings.Join(bad, "\n"))
	}
	fmt.Fprintf(os.Stderr, "conformance: %d exchanges agree with the served OpenAPI document\n", len(r.seen))
	return nil
}

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Exchange is one request a test sent to /api/v1 and the answer it got,
// as the OpenAPI conformance check (internal/openapi/check) reads them:
// one JSON line each in the file HOTPATH_TEST_EXCHANGES names.
type Exchange struct {
	Method     string      `json:"method"`
	URL        string      `json:"url"`
	Header     http.Header `json:"header"`
	Body       []byte      `json:"body"`
	Status     int         `json:"status"`
	RespHeader http.Header `json:"resp_header"`
	RespBody   []byte      `json:"resp_body"`
}

// exchangeRecorder wraps next so that, with HOTPATH_TEST_EXCHANGES set, it
// appends every /api/v1 exchange to that file; without it, it is next.
func exchangeRecorder(next http.RoundTripper) http.RoundTripper {
	path := os.Getenv("HOTPATH_TEST_EXCHANGES")
	if path == "" {
		return next
	}
	return &recorder{next: next, path: path}
}

type recorder struct {
	next http.RoundTripper
	path string
	mu   sync.Mutex
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return r.next.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	line, err := json.Marshal(Exchange{Method: req.Method, URL: req.URL.RequestURI(), Header: req.Header, Body: body,
		Status: resp.StatusCode, RespHeader: resp.Header, RespBody: answer})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(r.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	return resp, nil
}

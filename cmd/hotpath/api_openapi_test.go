package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hotpath/hotpath"
)

// servedDocument fetches the OpenAPI document a running server generated.
func servedDocument(t *testing.T) []byte {
	t.Helper()
	p := startProc(t)
	defer p.stop(t)
	resp, body := get(t, "GET", p.app+"/api/v1/openapi.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return []byte(body)
}

// TestOpenAPIDescribesEveryAPIRoute compares the operations of the served
// document with the /api/v1 resources the contract names, both ways.
func TestOpenAPIDescribesEveryAPIRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(servedDocument(t), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("the document declares version %q, want 3.1.0", doc.OpenAPI)
	}
	want := []string{
		"delete /api/v1/fortunes/{id}", "get /api/v1/fortunes", "get /api/v1/fortunes/{id}",
		"get /api/v1/worlds/{id}", "post /api/v1/fortunes", "put /api/v1/worlds/{id}",
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
	var described []string
	for path, item := range doc.Paths {
		for key := range item {
			if slices.Contains(methods, key) {
				described = append(described, key+" "+path)
			}
		}
	}
	slices.Sort(described)
	if !slices.Equal(described, want) {
		t.Errorf("the document describes %v, want %v", described, want)
	}
}

// TestOpenAPIDescribesConditionalAndIdempotentRequests checks each
// operation documents the headers it reads and the statuses they lead to.
func TestOpenAPIDescribesConditionalAndIdempotentRequests(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(servedDocument(t), &doc); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, method string
		params       []string
		statuses     []string
	}{
		{"/api/v1/worlds/{id}", "get", []string{"IfNoneMatch"}, []string{"200", "304", "400", "404"}},
		{"/api/v1/fortunes", "get", []string{"IfNoneMatch"}, []string{"200", "304", "422"}},
		{"/api/v1/fortunes/{id}", "get", []string{"IfNoneMatch"}, []string{"200", "304", "400", "404"}},
		{"/api/v1/worlds/{id}", "put", []string{"IfMatch", "IdempotencyKey"}, []string{"200", "400", "401", "409", "412", "413", "415", "422", "429"}},
		{"/api/v1/fortunes", "post", []string{"IdempotencyKey"}, []string{"201", "400", "401", "409", "413", "415", "422", "429"}},
		{"/api/v1/fortunes/{id}", "delete", []string{"IfMatch", "IdempotencyKey"}, []string{"204", "400", "401", "409", "412", "422"}},
	}
	for _, c := range cases {
		var op struct {
			Parameters []struct {
				Ref string `json:"$ref"`
			} `json:"parameters"`
			Responses map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(doc.Paths[c.path][c.method], &op); err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		for _, want := range c.params {
			if !slices.ContainsFunc(op.Parameters, func(p struct {
				Ref string `json:"$ref"`
			}) bool {
				return p.Ref == "#/components/parameters/"+want
			}) {
				t.Errorf("%s %s does not list the %s parameter", c.method, c.path, want)
			}
		}
		for _, s := range c.statuses {
			if _, ok := op.Responses[s]; !ok {
				t.Errorf("%s %s does not describe status %s", c.method, c.path, s)
			}
		}
	}
}

// TestOpenAPIMessagePatternIsTheValidation checks the pattern a
// schema-driven client builds bodies from against the server's own rule,
// character by character, so a body the schema allows is never refused.
func TestOpenAPIMessagePatternIsTheValidation(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					MinLength int    `json:"minLength"`
					MaxLength int    `json:"maxLength"`
					Pattern   string `json:"pattern"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(servedDocument(t), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Components.Schemas["NewFortune"].Properties["message"]
	if m.MinLength != 1 || m.MaxLength != 500 || m.Pattern == "" {
		t.Fatalf("NewFortune.message: minLength %d, maxLength %d, pattern %q; want 1, 500 and a pattern", m.MinLength, m.MaxLength, m.Pattern)
	}
	// ECMA-262 writes \uXXXX where Go's RE2 writes \x{XXXX}.
	re, err := regexp.Compile(regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(m.Pattern, `\x{$1}`))
	if err != nil {
		t.Fatalf("pattern %q: %v", m.Pattern, err)
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // not characters; JSON bodies cannot carry them (decode refuses lone halves)
		}
		s := "a" + string(r) + "b"
		if schema, server := re.MatchString(s), hotpath.Validate(&NewFortune{Message: s}) == nil; schema != server {
			t.Fatalf("U+%04X: the pattern allows it %v, the server %v", r, schema, server)
		}
	}
	if long := strings.Repeat("é", 501); hotpath.Validate(&NewFortune{Message: long}) == nil {
		t.Errorf("a message of 501 characters passes the server, the schema's maxLength is %d", m.MaxLength)
	}
}

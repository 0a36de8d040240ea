package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

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
	if err := json.Unmarshal(OpenAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Components.Schemas["NewFortune"].Properties["message"]
	if m.MinLength != 1 || m.MaxLength != MaxMessageLen || m.Pattern == "" {
		t.Fatalf("NewFortune.message: minLength %d, maxLength %d, pattern %q; want 1, %d and a pattern", m.MinLength, m.MaxLength, m.Pattern, MaxMessageLen)
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
		if schema, server := re.MatchString(s), checkMessage(s) == ""; schema != server {
			t.Fatalf("U+%04X: the pattern allows it %v, the server %v", r, schema, server)
		}
	}
	if long := strings.Repeat("é", MaxMessageLen+1); checkMessage(long) == "" {
		t.Errorf("a message of %d characters passes the server, the schema's maxLength is %d", MaxMessageLen+1, m.MaxLength)
	}
}

// TestOpenAPIDescribesConditionalAndIdempotentRequests checks each
// operation documents the headers it reads and the statuses they lead to.
func TestOpenAPIDescribesConditionalAndIdempotentRequests(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path, method string
		params       []string
		statuses     []string
	}{
		{"/api/v1/worlds/{id}", "get", []string{"IfNoneMatch"}, []string{"200", "304"}},
		{"/api/v1/fortunes", "get", []string{"IfNoneMatch"}, []string{"200", "304"}},
		{"/api/v1/fortunes/{id}", "get", []string{"IfNoneMatch"}, []string{"200", "304"}},
		{"/api/v1/openapi.json", "get", []string{"IfNoneMatch"}, []string{"200", "304"}},
		{"/api/v1/worlds/{id}", "put", []string{"IfMatch", "IdempotencyKey"}, []string{"200", "400", "409", "412", "422"}},
		{"/api/v1/fortunes", "post", []string{"IdempotencyKey"}, []string{"201", "400", "409", "422"}},
		{"/api/v1/fortunes/{id}", "delete", []string{"IfMatch", "IdempotencyKey"}, []string{"204", "400", "409", "412", "422"}},
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
			found := false
			for _, p := range op.Parameters {
				found = found || p.Ref == "#/components/parameters/"+want
			}
			if !found {
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

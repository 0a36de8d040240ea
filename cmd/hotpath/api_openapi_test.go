package main

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/router"
)

// TestOpenAPIDescribesEveryAPIRoute compares the registered /api/v1 routes
// with the paths and methods of the embedded OpenAPI document, both ways.
func TestOpenAPIDescribesEveryAPIRoute(t *testing.T) {
	r := router.New(metrics.New("test"), slog.New(slog.DiscardHandler))
	// Handlers are never called here; nil handler sets only name them.
	registerRoutes(r, endpoints{})
	registered := map[string]bool{}
	for _, rt := range r.Routes() {
		if strings.HasPrefix(rt.Path, api.Prefix+"/") && rt.Method != "HEAD" { // HEAD comes with every GET
			registered[strings.ToLower(rt.Method)+" "+rt.Path] = true
		}
	}
	if len(registered) == 0 {
		t.Fatal("no /api/v1 routes registered")
	}

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi.json declares version %q, want 3.1.x", doc.OpenAPI)
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}
	described := map[string]bool{}
	for path, item := range doc.Paths {
		for key := range item {
			if slices.Contains(methods, key) {
				described[key+" "+path] = true
			}
		}
	}
	for op := range registered {
		if !described[op] {
			t.Errorf("route %s is registered but not described in internal/api/openapi.json", op)
		}
	}
	for op := range described {
		if !registered[op] {
			t.Errorf("openapi.json describes %s, which is not registered", op)
		}
	}
}

package hotpath

import (
	"hash/fnv"
	"strconv"

	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/openapi"
	"github.com/hotpath/hotpath/internal/typed"
)

// OpenAPI serves, at path, the OpenAPI 3.1 document of the service's
// typed routes, generated at start from their types and options: each
// route's parameters and body with their constraints, its answer, the
// statuses and headers its options imply (401, 409, 412, 413, 415, 422,
// 429, 503; ETag, Idempotency-Key, RateLimit, Retry-After, Location) and
// the bearer security scheme. The document carries an ETag; a client that
// holds it gets 304.
func (a *App) OpenAPI(path string) {
	a.Handle("GET", path, func(c *Ctx) error {
		if endpoint.NotModified(c.rc, a.docTag) {
			return nil
		}
		c.Text(200, contentTypeJSON, a.doc)
		return nil
	}, Hidden(), Compress(true), Summary("This document"))
}

// Problems lists the problem statuses a route's handler itself may answer
// (a 404 for a row that is not there, a 409 for a full table), for the
// OpenAPI document; those its options imply are listed without it.
func Problems(statuses ...int) RouteOption {
	return RouteOption{func(s *routeSpec) { s.Problems = append(s.Problems, statuses...) }}
}

// document builds the OpenAPI document of the typed routes.
func (a *App) document() ([]byte, error) {
	schemas := typed.NewSchemas()
	var ops []openapi.Operation
	for _, r := range a.routes {
		if r.spec.Hidden || !r.spec.Typed || r.in == nil {
			continue
		}
		ops = append(ops, r.spec.Operation(r.in, r.out.status, r.out.bodyType))
	}
	return openapi.Build(openapi.Info{Title: a.title, Version: a.version, Description: a.desc}, ops, schemas)
}

// documentTag is the ETag of a document built at start: a hash of it.
func documentTag(doc []byte) []byte {
	h := fnv.New64a()
	h.Write(doc)
	return append(strconv.AppendUint([]byte(`"d`), h.Sum64(), 36), '"')
}

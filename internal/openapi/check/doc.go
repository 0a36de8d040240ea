// Package check validates the documents internal/openapi builds with an
// independent, maintained OpenAPI 3.1 validator (pb33f/libopenapi and
// libopenapi-validator): the document itself, and requests and answers
// against it. It is a module of its own so that the server's go.mod gains
// no test-only dependency; run it with
//
//	cd internal/openapi/check && go test ./...
package check

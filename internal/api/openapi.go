package api

import (
	_ "embed" // for the OpenAPI document
	"hash/fnv"
	"strconv"

	"github.com/valyala/fasthttp"
)

// OpenAPIDocument is the OpenAPI 3.1 description of /api/v1, kept beside
// the handlers it describes; a test fails when it and the registered
// routes disagree.
//
//go:embed openapi.json
var OpenAPIDocument []byte

// OpenAPI answers GET /api/v1/openapi.json, with 304 for a client that
// holds this build's document.
func (a *API) OpenAPI(ctx *fasthttp.RequestCtx) {
	if notModified(ctx, a.docTag) {
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(OpenAPIDocument)
}

// documentTag is the ETag of a document fixed at build time: a hash of it,
// computed once.
func documentTag(doc []byte) []byte {
	h := fnv.New64a()
	h.Write(doc)
	return append(strconv.AppendUint([]byte(`"d`), h.Sum64(), 36), '"')
}

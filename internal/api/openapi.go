package api

import (
	_ "embed" // for the OpenAPI document

	"github.com/valyala/fasthttp"
)

// OpenAPIDocument is the OpenAPI 3.1 description of /api/v1, kept beside
// the handlers it describes; a test fails when it and the registered
// routes disagree.
//
//go:embed openapi.json
var OpenAPIDocument []byte

// OpenAPI answers GET /api/v1/openapi.json.
func (a *API) OpenAPI(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBody(OpenAPIDocument)
}

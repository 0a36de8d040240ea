package web

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/api"
	"github.com/hotpath/hotpath/internal/csrf"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
)

// contentTypeHTML is the exact Content-Type of every page.
const contentTypeHTML = "text/html; charset=utf-8"

// Store is what the form needs from the data layer.
type Store interface {
	AddFortune(ctx context.Context, message string) (store.Fortune, error)
}

// Form serves GET /fortunes/new and POST /fortunes.
type Form struct {
	store   Store
	csrf    *csrf.Protector
	limits  api.Limits
	timeout time.Duration
	log     *slog.Logger
}

// NewForm returns the form handlers. Posts are checked by p and held to
// limits.Anonymous (limits.anonymous_writes) per client address; the store
// call is bounded by timeout (db.timeout).
func NewForm(s Store, p *csrf.Protector, limits api.Limits, timeout time.Duration, log *slog.Logger) *Form {
	return &Form{store: s, csrf: p, limits: limits, timeout: timeout, log: log}
}

// formPage is the form. Values are escaped by html/template for the
// context they land in; the message goes into a textarea, where escaping
// also keeps a "</textarea>" in it from ending the element.
var formPage = template.Must(template.New("form").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Add a fortune</title></head>
<body>
<h1>Add a fortune</h1>
{{if .Errors}}<ul id="errors">{{range .Errors}}<li>{{.Field}}: {{.Detail}}</li>{{end}}</ul>{{end}}
<form method="post" action="/fortunes">
<input type="hidden" name="` + csrf.FieldName + `" value="{{.Token}}">
<label for="message">Message (1 to 500 characters)</label><br>
<textarea id="message" name="message" rows="4" cols="60" maxlength="500" required>{{.Message}}</textarea><br>
<button type="submit" id="submit">Add</button>
</form>
<p><a href="/fortunes">All fortunes</a></p>
</body></html>
`))

// formData is what formPage shows.
type formData struct {
	Token   string
	Message string
	Errors  []problem.FieldError
}

// New answers GET /fortunes/new with an empty form.
func (f *Form) New(ctx *fasthttp.RequestCtx) {
	f.render(ctx, fasthttp.StatusOK, formData{Token: f.csrf.Token(ctx)})
}

// Create answers POST /fortunes (application/x-www-form-urlencoded): it
// holds the client to limits.anonymous_writes (429), checks the request
// came from our own form (403 if not), validates the message as POST
// /api/v1/fortunes does (422 re-shows the form with the errors), stores it
// and sends the browser to /fortunes (303). Every post counts against the
// limit, refused ones too: each costs the server work, and the cheapest
// refusal comes first.
func (f *Form) Create(ctx *fasthttp.RequestCtx) {
	// The answer depends on these request headers; caches must know.
	ctx.Response.Header.Set(fasthttp.HeaderVary, "Sec-Fetch-Site, Origin")
	if !f.limits.AdmitAnonymous(ctx) {
		return
	}
	if !isForm(ctx.Request.Header.ContentType()) {
		problem.Write(ctx, problem.New(fasthttp.StatusUnsupportedMediaType,
			"the form must be sent as application/x-www-form-urlencoded"))
		return
	}
	if err := f.csrf.Check(ctx); err != nil {
		problem.Write(ctx, &problem.Error{Status: fasthttp.StatusForbidden, Detail: forbiddenDetail(err), Err: err})
		return
	}
	// Browsers send a textarea's line breaks as CRLF; the API's rule is
	// newline only, so store them as the user typed them: one LF.
	msg := strings.ReplaceAll(string(ctx.PostArgs().Peek("message")), "\r\n", "\n")
	req := api.NewFortune{Message: msg}
	if errs := req.Validate(); len(errs) > 0 {
		f.render(ctx, fasthttp.StatusUnprocessableEntity, formData{Token: f.csrf.Token(ctx), Message: msg, Errors: errs})
		return
	}
	c, cancel := context.WithTimeout(tracing.Context(ctx), f.timeout)
	defer cancel()
	if _, err := f.store.AddFortune(c, req.Message); err != nil {
		f.limits.CountRefusal(err)
		api.WriteStoreError(ctx, f.log, err)
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/fortunes")
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}

func (f *Form) render(ctx *fasthttp.RequestCtx, status int, d formData) {
	var page bytes.Buffer
	if err := formPage.Execute(&page, d); err != nil {
		// The template and formData are fixed; only a programming mistake
		// gets here, answered as a 500 by the panic handler.
		panic("web: render form: " + err.Error())
	}
	// The page holds a token bound to this client's cookie.
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.Response.Header.Set(fasthttp.HeaderVary, "Sec-Fetch-Site, Origin")
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentTypeHTML)
	ctx.SetBody(page.Bytes())
}

// isForm accepts application/x-www-form-urlencoded with any charset
// parameter, as browsers send it.
func isForm(ct []byte) bool {
	mt, _, err := mime.ParseMediaType(string(ct))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// forbiddenDetail tells the user what to do, without echoing the headers.
func forbiddenDetail(err error) string {
	switch {
	case errors.Is(err, csrf.ErrCrossOrigin):
		return "cross-origin form posts are refused; add the origin to security.trusted_origins if it is yours"
	case errors.Is(err, csrf.ErrNoCookie):
		return "the CSRF cookie is missing or expired: reload /fortunes/new (cookies must be enabled) and submit again"
	}
	return "the CSRF token is missing or wrong: reload /fortunes/new and submit again"
}

package api

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/etag"
	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

const (
	// MaxMessageLen is the longest fortune message accepted, in characters.
	MaxMessageLen = 500
	// maxFortuneID is the largest id a Fortune can have (an int32 column).
	maxFortuneID = 1<<31 - 1
	// DefaultLimit and MaxLimit bound the page size of GET /api/v1/fortunes.
	DefaultLimit = 20
	MaxLimit     = 100
)

// NewFortune is the body of POST /api/v1/fortunes; the HTML form
// validates its input as one too.
type NewFortune struct {
	Message string `json:"message"`
}

// Validate names every field of f that breaks a constraint: the message
// must be 1..500 characters of valid UTF-8 with no control characters
// other than tab and newline.
func (f *NewFortune) Validate() []problem.FieldError {
	if d := checkMessage(f.Message); d != "" {
		return []problem.FieldError{{Field: "message", Detail: d}}
	}
	return nil
}

func checkMessage(m string) string {
	switch {
	case m == "":
		return "must not be empty"
	case !utf8.ValidString(m):
		return "must be valid UTF-8"
	case utf8.RuneCountInString(m) > MaxMessageLen:
		return "must be at most 500 characters"
	}
	for _, r := range m {
		if unicode.IsControl(r) && r != '\t' && r != '\n' {
			return "must not contain control characters other than tab and newline"
		}
	}
	return ""
}

// FortunePage is one page of GET /api/v1/fortunes. Next is the path of
// the following page, null on the last one.
type FortunePage struct {
	Items []store.Fortune `json:"items"`
	Next  *string         `json:"next"`
}

// pageQuery is the query of GET /api/v1/fortunes.
type pageQuery struct {
	limit int
	after int32
}

// parsePageQuery reads limit (1..100, default 20) and after (an id, 0 or
// more, default 0), naming every bad parameter.
func parsePageQuery(args *fasthttp.Args) (pageQuery, []problem.FieldError) {
	q := pageQuery{limit: DefaultLimit}
	var errs []problem.FieldError
	if args.Has("limit") {
		n, err := strconv.Atoi(string(args.Peek("limit")))
		if err != nil || n < 1 || n > MaxLimit || !digits(string(args.Peek("limit"))) {
			errs = append(errs, problem.FieldError{Field: "limit", Detail: "must be an integer from 1 to 100"})
		}
		q.limit = n
	}
	if args.Has("after") {
		n, err := strconv.ParseInt(string(args.Peek("after")), 10, 32)
		if err != nil || n < 0 || !digits(string(args.Peek("after"))) {
			errs = append(errs, problem.FieldError{Field: "after", Detail: "must be a fortune id: an integer from 0 to 2147483647"})
		}
		q.after = int32(n)
	}
	return q, errs
}

// ListFortunes answers GET /api/v1/fortunes?limit=N&after=ID: fortunes in
// id order after ID (keyset pagination, stable while rows are added).
func (a *API) ListFortunes(ctx *fasthttp.RequestCtx) {
	q, errs := parsePageQuery(ctx.QueryArgs())
	if len(errs) > 0 {
		problem.Write(ctx, problem.Validation(errs))
		return
	}
	c, cancel := a.context(ctx)
	defer cancel()
	// One row more than asked tells whether a next page exists.
	items, err := a.store.FortunesAfter(c, q.after, q.limit+1, make([]store.Fortune, 0, q.limit+1))
	if err != nil {
		a.fail(ctx, err)
		return
	}
	page := FortunePage{Items: items}
	more := len(items) > q.limit
	if more {
		page.Items = items[:q.limit]
		next := Prefix + "/fortunes?limit=" + strconv.Itoa(q.limit) + "&after=" + strconv.Itoa(int(page.Items[q.limit-1].ID))
		page.Next = &next
	}
	var tag [24]byte
	if notModified(ctx, pageTag(tag[:0], page.Items, more)) {
		return
	}
	handler.WriteJSON(ctx, fasthttp.StatusOK, &page)
}

// GetFortune answers GET /api/v1/fortunes/{id}.
func (a *API) GetFortune(ctx *fasthttp.RequestCtx) {
	id, err := pathID(ctx, maxFortuneID)
	if err != nil {
		problem.Write(ctx, err)
		return
	}
	c, cancel := a.context(ctx)
	defer cancel()
	f, err := a.store.Fortune(c, id)
	if err != nil {
		a.fail(ctx, err)
		return
	}
	var tag [16]byte
	if notModified(ctx, fortuneTag(tag[:0], f.ID)) {
		return
	}
	handler.WriteJSON(ctx, fasthttp.StatusOK, &f)
}

// CreateFortune answers POST /api/v1/fortunes: 201 with the stored
// fortune and its Location.
func (a *API) CreateFortune(ctx *fasthttp.RequestCtx) {
	caller, ok := a.authorize(ctx)
	if !ok {
		return
	}
	key, ok := a.idempotencyKey(ctx, caller)
	if !ok {
		return
	}
	var req NewFortune
	if err := Decode(ctx, &req); err != nil {
		problem.Write(ctx, err)
		return
	}
	c, cancel := a.context(ctx)
	defer cancel()
	ans, err := a.store.Apply(c, store.Change{Kind: store.AddFortune, Message: req.Message, Key: key}, func(v any) (store.Answer, error) {
		f := v.(store.Fortune)
		return jsonAnswer(fasthttp.StatusCreated, &f, Prefix+"/fortunes/"+strconv.Itoa(int(f.ID)), fortuneTag(nil, f.ID))
	})
	if err != nil {
		a.fail(ctx, err)
		return
	}
	writeAnswer(ctx, ans)
}

// DeleteFortune answers DELETE /api/v1/fortunes/{id}: 204, or 404 when
// there is no such fortune. With If-Match, a tag other than the fortune's
// own, or a fortune already gone, is 412.
func (a *API) DeleteFortune(ctx *fasthttp.RequestCtx) {
	caller, ok := a.authorize(ctx)
	if !ok {
		return
	}
	key, ok := a.idempotencyKey(ctx, caller)
	if !ok {
		return
	}
	id, err := pathID(ctx, maxFortuneID)
	if err != nil {
		problem.Write(ctx, err)
		return
	}
	cond := ifMatch(ctx)
	if cond.present() && !cond.any && !etag.Match(cond.header, fortuneTag(nil, id)) {
		problem.Write(ctx, errPrecondition)
		return
	}
	c, cancel := a.context(ctx)
	defer cancel()
	ans, err := a.store.Apply(c, store.Change{Kind: store.DeleteFortune, ID: id, Key: key}, func(any) (store.Answer, error) {
		return store.Answer{Status: fasthttp.StatusNoContent}, nil
	})
	if err != nil {
		a.failWrite(ctx, err, cond)
		return
	}
	writeAnswer(ctx, ans)
}

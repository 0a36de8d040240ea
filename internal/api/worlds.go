package api

import (
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/handler"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// worldCount is the number of Worlds; ids and random numbers are 1..worldCount.
const worldCount = 10000

// WorldUpdate is the body of PUT /api/v1/worlds/{id}.
type WorldUpdate struct {
	RandomNumber int64 `json:"randomNumber"`
}

// Validate names every field of u that breaks a constraint.
func (u *WorldUpdate) Validate() []problem.FieldError {
	if u.RandomNumber < 1 || u.RandomNumber > worldCount {
		return []problem.FieldError{{Field: "randomNumber", Detail: "must be an integer from 1 to 10000"}}
	}
	return nil
}

// GetWorld answers GET /api/v1/worlds/{id}.
func (a *API) GetWorld(ctx *fasthttp.RequestCtx) {
	id, err := pathID(ctx, worldCount)
	if err != nil {
		problem.Write(ctx, err)
		return
	}
	c, cancel := a.context(ctx)
	defer cancel()
	w, err := a.store.World(c, id)
	if err != nil {
		a.fail(ctx, err)
		return
	}
	var tag [16]byte
	if notModified(ctx, worldTag(tag[:0], w)) {
		return
	}
	handler.WriteJSON(ctx, fasthttp.StatusOK, &w)
}

// PutWorld answers PUT /api/v1/worlds/{id}: it stores the new
// randomNumber, updates the /cached-queries cache and answers the World.
// With If-Match it writes only while the World still has a listed ETag,
// checked and written in one statement, else 412.
func (a *API) PutWorld(ctx *fasthttp.RequestCtx) {
	caller, ok := a.authorize(ctx)
	if !ok {
		return
	}
	key, ok := a.idempotencyKey(ctx, caller)
	if !ok {
		return
	}
	id, err := pathID(ctx, worldCount)
	if err != nil {
		problem.Write(ctx, err)
		return
	}
	var req WorldUpdate
	if err := Decode(ctx, &req); err != nil {
		problem.Write(ctx, err)
		return
	}
	cond := ifMatch(ctx)
	change := store.Change{Kind: store.SetWorld, ID: id, RandomNumber: int32(req.RandomNumber), Key: key}
	if cond.present() && !cond.any {
		change.IfNumberIn = cond.worldNumbers()
	}
	c, cancel := a.context(ctx)
	defer cancel()
	var written []store.World
	ans, err := a.store.Apply(c, change, func(v any) (store.Answer, error) {
		w := v.(store.World)
		written = append(written, w)
		return jsonAnswer(fasthttp.StatusOK, &w, "", worldTag(nil, w))
	})
	if err != nil {
		a.failWrite(ctx, err, cond)
		return
	}
	if a.cache != nil && written != nil {
		a.cache.Update(written)
	}
	writeAnswer(ctx, ans)
}

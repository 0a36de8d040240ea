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
	c, cancel := a.context()
	defer cancel()
	w, err := a.store.World(c, id)
	if err != nil {
		a.fail(ctx, err)
		return
	}
	handler.WriteJSON(ctx, fasthttp.StatusOK, &w)
}

// PutWorld answers PUT /api/v1/worlds/{id}: it stores the new
// randomNumber, updates the /cached-queries cache and answers the World.
func (a *API) PutWorld(ctx *fasthttp.RequestCtx) {
	if !a.authorize(ctx) {
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
	c, cancel := a.context()
	defer cancel()
	w, err := a.store.SetWorld(c, id, int32(req.RandomNumber))
	if err != nil {
		a.fail(ctx, err)
		return
	}
	if a.cache != nil {
		a.cache.Update([]store.World{w})
	}
	handler.WriteJSON(ctx, fasthttp.StatusOK, &w)
}

package main

import (
	"encoding/json"
	"strconv"

	"github.com/hotpath/hotpath"
)

// WorldID is the path of one World.
type WorldID struct {
	ID uint32 `path:"id" minimum:"1" maximum:"10000" doc:"The World's id, 1..10000."`
}

// WorldUpdate is the body of PUT /api/v1/worlds/{id}.
type WorldUpdate struct {
	ID           uint32 `path:"id" minimum:"1" maximum:"10000" doc:"The World's id, 1..10000."`
	RandomNumber int32  `json:"randomNumber" minimum:"1" maximum:"10000"`
}

// worldTag is a World's entity tag, "w<randomNumber>": its one mutable
// value is its version (a value written back after a change gives the
// same tag, and the same bytes, as a strong tag must).
func worldTag(dst []byte, w *World) []byte {
	return strconv.AppendInt(append(dst, 'w'), int64(w.RandomNumber), 10)
}

// getWorld answers GET /api/v1/worlds/{id}.
func (s *service) getWorld(c *hotpath.Ctx, in *WorldID) (World, error) {
	var w World
	err := s.data.world(c.Context(), int32(in.ID), &w)
	return w, err
}

// putWorld answers PUT /api/v1/worlds/{id}: it stores the new
// randomNumber, emits world.updated, updates the /cached-queries cache and
// answers the World. With If-Match it writes only while the World still
// has a listed ETag, checked and written in one statement, else 412.
func (s *service) putWorld(c *hotpath.Ctx, in *WorldUpdate) (World, error) {
	driver := s.data.db.Driver()
	w, err := hotpath.Write(c, func(tx *hotpath.Tx) (World, error) {
		var w World
		cond := c.IfMatch()
		if !cond.Present() || cond.Any() {
			if err := tx.QueryRow(sqlSetWorld, in.RandomNumber, int32(in.ID)).Scan(&w.ID, &w.RandomNumber); err != nil {
				return w, preconditionIf(cond, err)
			}
		} else if err := setWorldIf(tx, driver, in, worldNumbers(cond), &w); err != nil {
			return w, err
		}
		return w, tx.Emit(eventWorldUpdated, w)
	})
	if err != nil {
		return w, err
	}
	s.cache.update([]World{w})
	return w, nil
}

// setWorldIf writes the World only while its randomNumber is one of in
// (the If-Match tags), in the statement that writes.
func setWorldIf(tx *hotpath.Tx, driver string, in *WorldUpdate, numbers []int32, w *World) error {
	var err error
	if driver == "postgres" {
		err = tx.QueryRow(postgresSetWorldIf, in.RandomNumber, int32(in.ID), numbers).Scan(&w.ID, &w.RandomNumber)
	} else {
		list, _ := json.Marshal(numbers) // a []int32 always encodes
		err = tx.QueryRow(sqliteSetWorldIf, in.RandomNumber, int32(in.ID), string(list)).Scan(&w.ID, &w.RandomNumber)
	}
	if isNotFound(err) {
		return errPrecondition
	}
	return err
}

// worldNumbers lists the randomNumbers the World tags of an If-Match
// stand for ("w123"); a list that names none gives an empty slice, which
// matches no World.
func worldNumbers(cond hotpath.Precondition) []int32 {
	out := []int32{}
	cond.Each(func(tag []byte) bool {
		if len(tag) < 2 || tag[0] != 'w' {
			return true
		}
		for _, d := range tag[1:] {
			if d < '0' || d > '9' {
				return true
			}
		}
		if n, err := strconv.ParseInt(string(tag[1:]), 10, 32); err == nil {
			out = append(out, int32(n))
		}
		return true
	})
	return out
}

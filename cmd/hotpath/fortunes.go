package main

import (
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"

	"github.com/hotpath/hotpath"
)

// NewFortune is the body of POST /api/v1/fortunes; the HTML form checks
// its field as one too. The message is 1..500 characters with no control
// characters other than tab and newline. The pattern's \u escapes are Go's
// (the tag is a quoted string): the document carries the characters
// themselves, which every regular-expression dialect reads alike.
type NewFortune struct {
	Message string `json:"message" minLength:"1" maxLength:"500" pattern:"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$" doc:"1 to 500 characters; no control characters other than tab and newline."`
}

// FortuneID is the path of one fortune.
type FortuneID struct {
	ID uint32 `path:"id" minimum:"1" maximum:"2147483647" doc:"The fortune's id."`
}

// PageQuery is the query of GET /api/v1/fortunes.
type PageQuery struct {
	Limit int   `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Fortunes per page."`
	After int32 `query:"after" minimum:"0" doc:"The last id of the previous page; 0 (the default) starts at the first."`
}

// FortunePage is one page of GET /api/v1/fortunes. Next is the path of the
// following page, null on the last one.
type FortunePage struct {
	Items []Fortune `json:"items"`
	Next  *string   `json:"next"`
}

// Entity tags come from stored state, never from hashing a body:
//
//   - a Fortune is "f<id>": fortunes never change once created, and ids are
//     never handed out twice (AUTOINCREMENT on SQLite, an identity column on
//     PostgreSQL), so the id names one message forever;
//   - a page is "p<hash>": FNV-1a over the ids on it and whether a next
//     page exists, which is all its bytes depend on.
func fortuneTag(dst []byte, f *Fortune) []byte {
	return strconv.AppendInt(append(dst, 'f'), int64(f.ID), 10)
}

func pageTag(dst []byte, p *FortunePage) []byte {
	h := fnv.New64a()
	for _, f := range p.Items {
		id := uint32(f.ID)
		h.Write([]byte{byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}) // little-endian, as before
	}
	if p.Next != nil {
		h.Write([]byte{1})
	}
	return strconv.AppendUint(append(dst, 'p'), h.Sum64(), 36)
}

// listFortunes answers GET /api/v1/fortunes?limit=N&after=ID: fortunes in
// id order after ID.
func (s *service) listFortunes(c *hotpath.Ctx, in *PageQuery) (FortunePage, error) {
	// One row more than asked tells whether a next page exists.
	items, err := s.data.fortunesAfter(c.Context(), in.After, in.Limit+1, make([]Fortune, 0, in.Limit+1))
	if err != nil {
		return FortunePage{}, err
	}
	page := FortunePage{Items: items}
	if len(items) > in.Limit {
		page.Items = items[:in.Limit]
		next := "/api/v1/fortunes?limit=" + strconv.Itoa(in.Limit) + "&after=" + strconv.Itoa(int(page.Items[in.Limit-1].ID))
		page.Next = &next
	}
	return page, nil
}

// getFortune answers GET /api/v1/fortunes/{id}.
func (s *service) getFortune(c *hotpath.Ctx, in *FortuneID) (Fortune, error) {
	return s.data.fortune(c.Context(), int32(in.ID))
}

// createFortune answers POST /api/v1/fortunes: 201 with the stored
// fortune and its Location, or 409 when api.max_fortunes are stored.
func (s *service) createFortune(c *hotpath.Ctx, in *NewFortune) (hotpath.Created[Fortune], error) {
	driver, max := s.data.db.Driver(), s.api.Get().MaxFortunes
	created, err := hotpath.Write(c, func(tx *hotpath.Tx) (hotpath.Created[Fortune], error) {
		f, err := addFortune(tx, driver, in.Message, max)
		if err != nil {
			return hotpath.Created[Fortune]{}, err
		}
		return hotpath.Created[Fortune]{Location: "/api/v1/fortunes/" + strconv.Itoa(int(f.ID)), Body: f}, nil
	})
	s.countRefusal(err)
	return created, err
}

// deleteFortune answers DELETE /api/v1/fortunes/{id}: 204, or 404 when
// there is no such fortune. With If-Match, a tag other than the fortune's
// own, or a fortune already gone, is 412.
func (s *service) deleteFortune(c *hotpath.Ctx, in *FortuneID) (hotpath.NoContent, error) {
	cond := c.IfMatch()
	if err := cond.Check(fortuneTag(nil, &Fortune{ID: int32(in.ID)})); err != nil {
		return hotpath.NoContent{}, err
	}
	return hotpath.Write(c, func(tx *hotpath.Tx) (hotpath.NoContent, error) {
		var f Fortune
		if err := tx.QueryRow(sqlDeleteFortune, int32(in.ID)).Scan(&f.ID, &f.Message); err != nil {
			return hotpath.NoContent{}, preconditionIf(cond, err)
		}
		return hotpath.NoContent{}, tx.Emit(eventFortuneDeleted, f)
	})
}

// errFull is the answer to a create beyond api.max_fortunes. A full table
// is a conflict with the resource's state that the client can resolve
// (delete a fortune) and retrying will not: so 409, not 507, which would
// count as a server failure and invite retries, and not 429 or 503, whose
// Retry-After would promise a wait that may never end.
type errFull struct{ max int }

func (e errFull) Error() string { return "Fortune holds its cap of rows (api.max_fortunes)" }

func fullError(max int) error {
	return &hotpath.Error{Status: http.StatusConflict, Err: errFull{max},
		Detail: "no more fortunes can be stored: this server keeps at most " + strconv.Itoa(max) + " (api.max_fortunes); delete one to add another"}
}

// countRefusal counts err when it refused a create at api.max_fortunes.
func (s *service) countRefusal(err error) {
	if errors.As(err, new(errFull)) {
		s.refusals.Inc()
	}
}

// errPrecondition is the 412 of a write whose If-Match names no current
// version.
var errPrecondition = hotpath.ErrPreconditionFailed

// preconditionIf turns a missing row into 412 when the write had an
// If-Match: the version it names is gone.
func preconditionIf(cond hotpath.Precondition, err error) error {
	if cond.Present() && isNotFound(err) {
		return errPrecondition
	}
	return err
}

func isNotFound(err error) bool { return errors.Is(err, hotpath.ErrNotFound) }

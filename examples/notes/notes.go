package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/hotpath/hotpath"
)

// Note is a stored note, as every answer shows it.
type Note struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// NewNote is the body of POST /v1/notes.
type NewNote struct {
	Title string `json:"title" minLength:"1" maxLength:"200"`
	Body  string `json:"body" maxLength:"5000" required:"false"`
}

// NoteID is the path of one note.
type NoteID struct {
	ID int64 `path:"id" minimum:"1"`
}

// NotePage is the query of GET /v1/notes.
type NotePage struct {
	Limit int   `query:"limit" minimum:"1" maximum:"100" default:"20"`
	After int64 `query:"after" minimum:"0"`
}

// Page is one page of notes; Next is the path of the following page, null
// on the last one.
type Page struct {
	Items []Note  `json:"items"`
	Next  *string `json:"next"`
}

// noteTag is a note's entity tag: notes never change, so the id is the
// version ("n42").
func noteTag(dst []byte, n *Note) []byte { return strconv.AppendInt(append(dst, 'n'), n.ID, 10) }

// notes is the resource: its handlers, over the App's database.
type notes struct {
	db  *hotpath.DB
	cfg *hotpath.Setting[Config]
}

func (s *notes) create(c *hotpath.Ctx, in *NewNote) (hotpath.Created[Note], error) {
	return hotpath.Write(c, func(tx *hotpath.Tx) (hotpath.Created[Note], error) {
		var kept int64
		if err := tx.QueryRow(`UPDATE note_count SET n = n + 1 WHERE id = 1 AND n < $1 RETURNING n`,
			s.cfg.Get().MaxNotes).Scan(&kept); err != nil {
			return hotpath.Created[Note]{}, full(err)
		}
		n := Note{Title: in.Title, Body: in.Body, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if err := tx.QueryRow(`INSERT INTO notes (title, body, created_at) VALUES ($1, $2, $3) RETURNING id`,
			n.Title, n.Body, n.CreatedAt.UnixMicro()).Scan(&n.ID); err != nil {
			return hotpath.Created[Note]{}, err
		}
		return hotpath.Created[Note]{Location: "/v1/notes/" + strconv.FormatInt(n.ID, 10), Body: n}, tx.Emit("note.created", n)
	})
}

func (s *notes) get(c *hotpath.Ctx, in *NoteID) (Note, error) {
	var n Note
	var at int64
	err := s.db.QueryRow(c.Context(), `SELECT id, title, body, created_at FROM notes WHERE id = $1`, in.ID).
		Scan(&n.ID, &n.Title, &n.Body, &at)
	n.CreatedAt = time.UnixMicro(at).UTC()
	return n, err
}

func (s *notes) list(c *hotpath.Ctx, in *NotePage) (Page, error) {
	rows, err := s.db.Query(c.Context(), `SELECT id, title, body, created_at FROM notes WHERE id > $1 ORDER BY id LIMIT $2`,
		in.After, in.Limit+1) // one more than asked tells whether a next page exists
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	p := Page{Items: []Note{}}
	for rows.Next() {
		var n Note
		var at int64
		if err := rows.Scan(&n.ID, &n.Title, &n.Body, &at); err != nil {
			return Page{}, err
		}
		n.CreatedAt = time.UnixMicro(at).UTC()
		p.Items = append(p.Items, n)
	}
	if len(p.Items) > in.Limit {
		p.Items = p.Items[:in.Limit]
		next := "/v1/notes?limit=" + strconv.Itoa(in.Limit) + "&after=" + strconv.FormatInt(p.Items[in.Limit-1].ID, 10)
		p.Next = &next
	}
	return p, rows.Err()
}

func (s *notes) delete(c *hotpath.Ctx, in *NoteID) (hotpath.NoContent, error) {
	return hotpath.Write(c, func(tx *hotpath.Tx) (hotpath.NoContent, error) {
		if n, err := tx.Exec(`DELETE FROM notes WHERE id = $1`, in.ID); err != nil || n == 0 {
			return hotpath.NoContent{}, orNotFound(err)
		}
		if _, err := tx.Exec(`UPDATE note_count SET n = n - 1 WHERE id = 1`); err != nil {
			return hotpath.NoContent{}, err
		}
		return hotpath.NoContent{}, tx.Emit("note.deleted", map[string]int64{"id": in.ID})
	})
}

// full is the answer when notes.max_notes notes are stored (no row of
// note_count was below the cap).
func full(err error) error {
	if !errors.Is(err, hotpath.ErrNotFound) {
		return err
	}
	return hotpath.Conflict("no more notes can be stored (notes.max_notes); delete one to add another")
}

func orNotFound(err error) error {
	if err != nil {
		return err
	}
	return hotpath.NotFound("no note with this id")
}

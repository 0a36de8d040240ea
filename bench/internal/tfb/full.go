package tfb

import (
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// hotpath's default connection limits (server.read_timeout, write_timeout,
// idle_timeout), which the full-featured peers set on their servers.
const (
	ReadTimeout  = 5 * time.Second
	WriteTimeout = 5 * time.Second
	IdleTimeout  = 60 * time.Second
)

// AccessLog is where a full-featured peer writes its access log: stdout,
// or a discarded writer with -log-discard (the lines are still formatted).
func (f PeerFlags) AccessLog() io.Writer {
	if f.LogDiscard {
		return io.Discard
	}
	return os.Stdout
}

// Page is one page of GET /api/v1/fortunes, as hotpath answers it: Next is
// the path of the following page, null on the last one.
type Page struct {
	Items []Fortune `json:"items"`
	Next  *string   `json:"next"`
}

// ErrPageQuery is returned by ParsePage for a limit outside 1..100 or an
// after that is not an id.
var ErrPageQuery = errors.New("limit must be 1..100 and after a fortune id")

// ParsePage reads the limit (1..100, default 20) and after (default 0)
// query parameters of GET /api/v1/fortunes; empty means absent.
func ParsePage(rawLimit, rawAfter string) (limit int, after int32, err error) {
	limit = 20
	if rawLimit != "" {
		if limit, err = strconv.Atoi(rawLimit); err != nil || limit < 1 || limit > 100 {
			return 0, 0, ErrPageQuery
		}
	}
	if rawAfter != "" {
		n, err := strconv.ParseInt(rawAfter, 10, 32)
		if err != nil || n < 0 {
			return 0, 0, ErrPageQuery
		}
		after = int32(n)
	}
	return limit, after, nil
}

// NewPage makes the page of limit fortunes from rows, which holds up to
// limit+1 fortunes: one more than asked tells whether a next page exists.
func NewPage(rows []Fortune, limit int) Page {
	if len(rows) <= limit {
		return Page{Items: rows}
	}
	next := "/api/v1/fortunes?limit=" + strconv.Itoa(limit) + "&after=" + strconv.Itoa(int(rows[limit-1].ID))
	return Page{Items: rows[:limit], Next: &next}
}

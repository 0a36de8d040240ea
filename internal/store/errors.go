package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hotpath/hotpath/internal/tracing"
)

// Every failure of either driver is classified once, where it happens, so
// that callers test for a sentinel with errors.Is whatever the driver.
var (
	// ErrNotFound reports that the row asked for does not exist (a Row
	// without a row). Callers answer 404.
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable is wrapped by every error caused by the database being
	// unreachable, slow, busy or locked, out of connections, closed or not
	// migrated yet: the request may succeed later, so callers answer 503
	// with Retry-After.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrInvalid reports a value the database cannot store as given: a
	// CHECK or NOT NULL constraint, a value out of range or too long
	// (PostgreSQL class 22), text that is not valid UTF-8 or holds NUL.
	// Callers answer 422.
	ErrInvalid = errors.New("store: invalid value")
	// ErrConflict reports a change that contradicts stored rows: a UNIQUE
	// or PRIMARY KEY already taken, a FOREIGN KEY without its row (or one
	// still referenced), an exclusion constraint. Callers answer 409.
	ErrConflict = errors.New("store: conflict with stored rows")
)

// classified is the failure of op, of one of the classes above, that keeps
// its cause inspectable by errors.Is and errors.As.
type classified struct {
	op    string
	class error
	err   error
}

func (e *classified) Error() string { return e.op + ": " + e.err.Error() }

// Unwrap exposes both the class and the cause.
func (e *classified) Unwrap() []error { return []error{e.class, e.err} }

// unavailable marks err, the failure of op, as transient.
func unavailable(op string, err error) error {
	return &classified{op: op, class: ErrUnavailable, err: err}
}

// errClosed is the error of every call after Close: a request still running
// when shutdown.timeout ran out meets it, and the process is going away,
// so it is an outage like any other.
var errClosed = unavailable("store", errors.New("database closed"))

// errNotMigrated is returned until PostgreSQL's background migration has
// succeeded.
var errNotMigrated = unavailable("postgres", errors.New("schema not migrated yet: waiting for the database at db.dsn"))

// alreadyClassified reports whether err carries a class of its own (or is
// a refusal of a key), so wrapping it again would only repeat it.
func alreadyClassified(err error) bool {
	for _, c := range []error{ErrNotFound, ErrUnavailable, ErrInvalid, ErrConflict, ErrKeyInFlight, ErrKeyReused} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// failSQLite wraps err, the failure of op on SQLite, and classifies it.
// closed is whether the store was closed: a call that meets a closed pool
// is an outage.
func failSQLite(ctx context.Context, closed bool, op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if alreadyClassified(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED, code&0xff == sqlite3.SQLITE_INTERRUPT:
			return unavailable(op, err)
		case code == sqlite3.SQLITE_CONSTRAINT_CHECK, code == sqlite3.SQLITE_CONSTRAINT_NOTNULL, code == sqlite3.SQLITE_CONSTRAINT_DATATYPE:
			return &classified{op: op, class: ErrInvalid, err: err}
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
			code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, code == sqlite3.SQLITE_CONSTRAINT_ROWID:
			return &classified{op: op, class: ErrConflict, err: err}
		}
	}
	if contextDone(ctx, err) || errors.Is(err, sql.ErrConnDone) || closed {
		return unavailable(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff // the primary result code
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

// failPostgres wraps err, the failure of op on PostgreSQL, and classifies
// it. Errors reported by the server are transient only for the classes
// listed in transientCode; every other error (dial, broken connection,
// pool closed, deadline) is the database being out of reach, so it is
// ErrUnavailable.
func failPostgres(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if alreadyClassified(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if !errors.As(err, &ce) && errors.As(err, &pe) && !transientCode(pe.Code) {
		switch {
		case strings.HasPrefix(pe.Code, "22"), // data exception: the value, not the database, is at fault
			pe.Code == "23502", // not_null_violation
			pe.Code == "23514": // check_violation
			return &classified{op: op, class: ErrInvalid, err: err}
		case pe.Code == "23505", // unique_violation
			pe.Code == "23503", // foreign_key_violation
			pe.Code == "23P01": // exclusion_violation
			return &classified{op: op, class: ErrConflict, err: err}
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	return unavailable(op, err)
}

// transientCode reports whether a SQLSTATE means "try again later".
func transientCode(code string) bool {
	if len(code) < 2 {
		return false
	}
	switch code[:2] {
	case "08", // connection exception
		"53", // insufficient resources, such as too many connections
		"57", // operator intervention: query_canceled (statement_timeout), admin shutdown
		"58": // system error (I/O)
		return true
	}
	switch code {
	case "55P03", // lock_not_available (lock_timeout)
		"40001", // serialization_failure
		"40P01": // deadlock_detected
		return true
	}
	return false
}

// checkText refuses a text argument that PostgreSQL would refuse, so a
// value SQLite accepts is not refused later by the other driver: SQLite
// stores any bytes as TEXT. Bytes belong in a []byte (a BLOB, a bytea).
func checkText(args []any) error {
	for i, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			return fmt.Errorf("argument $%d is not valid UTF-8 text without NUL: %w", i+1, ErrInvalid)
		}
	}
	return nil
}

// statementOp names a statement in errors as its spans are named: the
// operation and the table ("SELECT notes"). It runs only on failures.
func statementOp(statement string) string {
	words := strings.Fields(statement)
	if len(words) == 0 {
		return "empty statement"
	}
	op := strings.ToUpper(words[0])
	for i, w := range words[:len(words)-1] {
		switch strings.ToUpper(w) {
		case "FROM", "INTO", "UPDATE":
			return op + " " + words[i+1]
		}
	}
	return op
}

// endSpan ends the span of a call (see tracing.StartDB) with the class of
// its error, never its text, which may quote a value. A missing row or a
// refused key is an answer, not a failure.
func endSpan(s tracing.Span, err error) {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrKeyInFlight), errors.Is(err, ErrKeyReused):
		s.EndDB("")
	case errors.Is(err, ErrUnavailable):
		s.EndDB("unavailable")
	case errors.Is(err, ErrInvalid):
		s.EndDB("invalid")
	case errors.Is(err, ErrConflict):
		s.EndDB("conflict")
	default:
		s.EndDB("_OTHER")
	}
}

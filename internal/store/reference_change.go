package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The reference service's writes as one closed union, Change, made by
// Apply on DB.Write. Part of the reference service: it goes when that
// service writes through DB.Write itself.

// A Change is one write of the REST API, made by Apply in one transaction
// together with everything that must commit or vanish with it: the check of
// its precondition, its webhook events and its idempotency answer.
type Change struct {
	// Kind says which write this is.
	Kind ChangeKind
	// ID is the World or Fortune written (SetWorld, DeleteFortune).
	ID int32
	// RandomNumber is the new value of the World (SetWorld).
	RandomNumber int32
	// Message is the text of the new Fortune (AddFortune).
	Message string
	// IfNumberIn makes SetWorld conditional: the World is written only
	// while its current randomNumber is one of these, checked by the UPDATE
	// itself, so no other write can slip in between the check and the
	// write. nil writes unconditionally; an empty, non-nil list never
	// writes. A World that is not written answers ErrPrecondition.
	IfNumberIn []int32
	// Key, when set, makes the change idempotent (see idempotency.go): the
	// answer is stored with it, and a repeat of the request gets that
	// answer back instead of a second change.
	Key *Key
}

// ChangeKind is the kind of a Change.
type ChangeKind uint8

// The writes of the REST API.
const (
	// SetWorld stores RandomNumber in the World ID; the changed object is
	// the World as stored.
	SetWorld ChangeKind = iota + 1
	// AddFortune stores a new Fortune with Message; the changed object is
	// the Fortune with its new id.
	AddFortune
	// DeleteFortune removes the Fortune ID; the changed object is the
	// Fortune removed.
	DeleteFortune
)

// errUnknownChange refuses a Change whose Kind is none of the constants;
// every switch on the kind ends in it rather than in one of the writes.
var errUnknownChange = errors.New("store: unknown change kind")

// op names the change in errors.
func (k ChangeKind) op() string {
	switch k {
	case SetWorld:
		return "update world"
	case AddFortune:
		return "insert fortune"
	case DeleteFortune:
		return "delete fortune"
	}
	return "unknown change"
}

// event is the webhook event type the change records.
func (k ChangeKind) event() string {
	switch k {
	case SetWorld:
		return EventWorldUpdated
	case AddFortune:
		return EventFortuneCreated
	case DeleteFortune:
		return EventFortuneDeleted
	}
	return ""
}

// check refuses, before any database work, what the database would.
func (c *Change) check() error {
	switch c.Kind {
	case SetWorld, DeleteFortune:
		return nil
	case AddFortune:
		return validMessage(c.Message)
	}
	return errUnknownChange
}

// Render turns the object a change wrote (a World or a Fortune, see
// ChangeKind) into the answer. It runs inside the transaction, before the
// commit, and must not block.
type Render func(changed any) (Answer, error)

// ErrPrecondition reports a conditional change whose condition did not
// hold (Change.IfNumberIn): nothing was written. Callers answer 412.
var ErrPrecondition = errors.New("store: precondition failed")

// Apply makes c and returns the answer render makes of it. When the
// outbox is on or c has a Key, c, its event and its stored answer are one
// DB.Write; otherwise c is its one statement, outside a transaction. A
// repeat of a keyed change returns the stored answer, Replayed, and
// changes nothing; one that comes while the first is still in flight on
// PostgreSQL, on any replica, is ErrKeyInFlight.
func (r *reference) Apply(ctx context.Context, c Change, render Render) (Answer, error) {
	if err := c.check(); err != nil {
		return Answer{}, err
	}
	if c.Key == nil && len(r.outbox.current().urls) == 0 {
		// Nothing must commit with the change: one round trip, no BEGIN
		// and COMMIT around it.
		obj, err := r.run(func(q string, args ...any) Row { return r.writeRow(ctx, q, args...) }, &c)
		if err != nil {
			return Answer{}, fmt.Errorf("%s: %w", c.Kind.op(), err)
		}
		return render(obj)
	}
	var obj any
	ans, err := r.Write(ctx, c.Key, func(tx *Tx) error {
		var err error
		if obj, err = r.run(tx.QueryRow, &c); err != nil {
			return err
		}
		return tx.Emit(c.Kind.event(), obj)
	}, func() (Answer, error) { return render(obj) })
	if err != nil {
		return Answer{}, fmt.Errorf("%s: %w", c.Kind.op(), err)
	}
	return ans, nil
}

// run makes the change itself through row, which runs a statement for
// one row in the change's transaction or on its own, and returns the
// changed object.
func (r *reference) run(row func(q string, args ...any) Row, c *Change) (any, error) {
	switch c.Kind {
	case SetWorld:
		var w World
		if c.IfNumberIn == nil {
			err := row(sqlSetWorld, c.RandomNumber, c.ID).Scan(&w.ID, &w.RandomNumber)
			return w, err
		}
		q, in := postgresSetWorldIf, any(c.IfNumberIn)
		if r.Driver() == "sqlite" {
			b, err := json.Marshal(c.IfNumberIn)
			if err != nil {
				return nil, fmt.Errorf("encode the numbers allowed: %w", err)
			}
			q, in = sqliteSetWorldIf, string(b)
		}
		err := row(q, c.RandomNumber, c.ID, in).Scan(&w.ID, &w.RandomNumber)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrPrecondition
		}
		return w, err
	case AddFortune:
		q := postgresAddFortune
		if r.Driver() == "sqlite" {
			q = sqliteAddFortune
		}
		f := Fortune{Message: c.Message}
		err := row(q, c.Message, r.cap.max.Load()).Scan(&f.ID)
		if errors.Is(err, ErrNotFound) {
			return nil, r.cap.full()
		}
		return f, err
	case DeleteFortune:
		var f Fortune
		err := row(sqlDeleteFortune, c.ID).Scan(&f.ID, &f.Message)
		return f, err
	}
	return nil, errUnknownChange
}

// applyFor makes c through r and returns the changed object, for callers
// that need no answer.
func applyFor[T any](ctx context.Context, r *reference, c Change) (T, error) {
	var out T
	_, err := r.Apply(ctx, c, func(v any) (Answer, error) {
		out = v.(T) // ChangeKind documents the type of each kind's object
		return Answer{}, nil
	})
	return out, err
}

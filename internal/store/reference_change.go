package store

import (
	"context"
	"errors"
)

// A Change is one write of the REST API, made by Apply in one transaction
// together with everything that must commit or vanish with it: the check of
// its precondition and its webhook events.
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

// statement is the text of the change's statement, for its span; ifText
// is the driver's conditional SetWorld.
func (c *Change) statement(ifText string) string {
	switch {
	case c.Kind == SetWorld && c.IfNumberIn != nil:
		return ifText
	case c.Kind == SetWorld:
		return sqlSetWorld
	case c.Kind == AddFortune:
		return sqlAddFortune
	case c.Kind == DeleteFortune:
		return sqlDeleteFortune
	}
	return ""
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

// errUnknownChange refuses a Change whose Kind is none of the constants;
// every switch on the kind ends in it rather than in one of the writes.
var errUnknownChange = errors.New("store: unknown change kind")

// Answer is what a change answered its client: rendered once by the
// caller from the changed object, inside the change's transaction, and
// stored with the change's idempotency key if it has one.
type Answer struct {
	Status      int
	ContentType string
	Location    string
	ETag        string
	Body        []byte
	// Replayed reports an answer read back from the idempotency record of
	// an earlier request: nothing was changed this time.
	Replayed bool
}

// Render turns the object a change wrote (a World or a Fortune, see
// ChangeKind) into the answer. It runs inside the transaction, before the
// commit, and must not block.
type Render func(changed any) (Answer, error)

// ErrPrecondition reports a conditional change whose condition did not
// hold (Change.IfNumberIn): nothing was written. Callers answer 412.
var ErrPrecondition = errors.New("store: precondition failed")

// refusal reports whether err is a change refused for what was asked
// (ErrPrecondition, ErrKeyInFlight, ErrKeyReused, ErrFull), not a database
// failure.
func refusal(err error) bool {
	return errors.Is(err, ErrPrecondition) || errors.Is(err, ErrKeyInFlight) || errors.Is(err, ErrKeyReused) ||
		errors.Is(err, ErrFull)
}

// applier is what the plain write methods of both drivers share.
type applier interface {
	Apply(ctx context.Context, c Change, render Render) (Answer, error)
}

// applyFor makes c through a and returns the changed object, for callers
// that need no answer.
func applyFor[T any](ctx context.Context, a applier, c Change) (T, error) {
	var out T
	_, err := a.Apply(ctx, c, func(v any) (Answer, error) {
		out = v.(T) // ChangeKind documents the type of each kind's object
		return Answer{}, nil
	})
	return out, err
}

// Package endpoint holds what one route requires, resolved when the route is
// registered, and the steps those requirements add to each of its requests:
// who may call it and how often, the form protection it needs, its
// Idempotency-Key, how its answer is written and what its errors say.
//
// A route's requirements live in its registration (the options of the
// public package, which fill a Spec), never in its handler's body: a write
// route with no decision about who may call it does not start (Spec.Check),
// and the steps run in one order for every route, so a refused request
// changes nothing and an anonymous client learns nothing about the body it
// sent:
//
//  1. credentials (Access): a missing or wrong bearer token is 401 with
//     WWW-Authenticate: Bearer, and counts against limits.anonymous_writes of
//     the client's address (429 once spent), so guessing tokens is held to
//     that rate;
//  2. the route's rate-limit class (reads, anonymous_writes or
//     token_writes): 429 with Retry-After and RateLimit headers;
//  3. form protection (CSRF routes, unsafe methods): 415 unless the body is
//     a form, 403 for a cross-origin post or a missing or wrong token;
//  4. the route's own body bound (MaxBody): 413;
//  5. the Idempotency-Key (Idempotent routes): 400 when malformed, too long
//     or sent twice.
//
// Decoding and validating the input, and the handler, come after these.
package endpoint

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
)

// Access says who may call a route.
type Access uint8

const (
	// Undecided is a route whose registration said nothing: allowed for
	// safe methods (GET, HEAD, OPTIONS), a registration error for the others.
	Undecided Access = iota
	// Public routes take requests from anyone.
	Public
	// Bearer routes need Authorization: Bearer with a token from
	// auth.tokens or auth.tokens_file.
	Bearer
)

// Class is the rate-limit class a route's requests count against.
type Class uint8

const (
	// DefaultClass picks by the route: token_writes for an authenticated
	// unsafe route (per token), anonymous_writes for a public unsafe one
	// (per client address), reads for the rest (per client address).
	DefaultClass Class = iota
	// Reads is limits.reads, per client address.
	Reads
	// AnonymousWrites is limits.anonymous_writes, per client address.
	AnonymousWrites
	// TokenWrites is limits.token_writes, per token; only for Bearer routes.
	TokenWrites
)

// Switch is an option that is on, off, or left to the route's kind.
type Switch int8

const (
	// Auto lets the kind of route decide.
	Auto Switch = iota
	// On is asked for.
	On
	// Off is refused.
	Off
)

// Spec is one route's requirements. The public package's options fill it
// at registration; Check then refuses what cannot be served safely.
type Spec struct {
	Method, Path string
	// Access: who may call it.
	Access Access
	// Class: the rate limit its requests count against.
	Class Class
	// Idempotent routes honour Idempotency-Key: a retry with the same key
	// and request gets the first answer again (stored with the change).
	Idempotent bool
	// IfMatch routes honour If-Match (412 when it names no current version).
	IfMatch bool
	// ETag routes answer with an entity tag, and reads answer a matching
	// If-None-Match with 304.
	ETag bool
	// Compress: Auto compresses typed JSON routes and no raw ones.
	Compress Switch
	// MaxBody bounds the body below server.max_body_size (0: that alone).
	MaxBody int
	// Timeout bounds the handler's context (0: none beyond db.timeout on
	// each database call).
	Timeout time.Duration
	// CSRF routes take HTML forms: unsafe requests must carry the form's
	// token and come from this origin (or security.trusted_origins).
	CSRF bool
	// HTML routes answer pages: they get the pages' security headers.
	HTML bool
	// NoHead keeps a GET route from answering HEAD (a GET that writes).
	NoHead bool
	// Documentation. Problems are the statuses the handler itself may
	// answer, beyond those the options imply.
	Problems             []int
	Summary, Description string
	Tags                 []string
	Hidden               bool
	// Typed routes decode their input and encode their answer; raw ones
	// are handed the request.
	Typed bool

	errs []error
}

// Fail records a mistake found while applying an option; Check reports it.
func (s *Spec) Fail(format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

// Safe reports whether the method only reads (RFC 9110 §9.2.1).
func (s *Spec) Safe() bool {
	switch s.Method {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions:
		return true
	}
	return false
}

// Check refuses a route that cannot be served safely: the error is one
// line naming the route, for the start-up message.
func (s *Spec) Check() error {
	route := s.Method + " " + s.Path
	errs := slices.Clone(s.errs)
	if !s.Safe() && s.Access == Undecided {
		errs = append(errs, errors.New("a "+s.Method+" route must say who may call it: hotpath.Auth() for bearer tokens, or hotpath.Public() for anyone"))
	}
	if s.Idempotent && s.Safe() {
		errs = append(errs, errors.New("hotpath.Idempotent() is for routes that change something, not "+s.Method))
	}
	if s.Idempotent && s.Access != Bearer {
		errs = append(errs, errors.New("hotpath.Idempotent() needs hotpath.Auth(): a key belongs to the caller who sent it"))
	}
	if s.Class == TokenWrites && s.Access != Bearer {
		errs = append(errs, errors.New("the token_writes limit counts per token, so it needs hotpath.Auth()"))
	}
	if s.CSRF && s.Access == Bearer {
		errs = append(errs, errors.New("hotpath.CSRF() protects forms a browser posts with cookies; a bearer-token route needs no CSRF token"))
	}
	if s.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("hotpath.MaxBody(%d): a body bound must be positive", s.MaxBody))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("hotpath.Timeout(%s): a timeout must be positive", s.Timeout))
	}
	if len(errs) == 0 {
		return nil
	}
	// One line: the first mistake; fixing it shows the next.
	return fmt.Errorf("route %s: %w", route, errs[0])
}

// class is the rate-limit class a request that passed the credentials
// step counts against.
func (s *Spec) class() Class {
	if s.Class != DefaultClass {
		return s.Class
	}
	switch {
	case s.Safe():
		return Reads
	case s.Access == Bearer:
		return TokenWrites
	}
	return AnonymousWrites
}

// Compressed reports whether the route's answers go through compression.
func (s *Spec) Compressed() bool {
	switch s.Compress {
	case On:
		return true
	case Off:
		return false
	}
	return s.Typed
}

// Package idempotency reads the Idempotency-Key request header
// (draft-ietf-httpapi-idempotency-key-header), fingerprints the request it
// came with, and prunes expired stored answers. Storing and replaying the
// answers is the store's job (store.Key), in the same transaction as the
// change they answer.
package idempotency

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Header is the request header that carries the key; ReplayedHeader,
// "true", marks an answer sent again from the stored record.
const (
	Header         = "Idempotency-Key"
	ReplayedHeader = "Idempotency-Replayed"
)

// MaxKeyLen is the longest key accepted, in bytes.
const MaxKeyLen = 255

// ErrBadKey is returned by ParseKey for a key hotpath does not accept.
var ErrBadKey = errors.New("Idempotency-Key must be 1 to 255 characters from A-Z a-z 0-9 - _ . : ~ + / =, " +
	"as a quoted string (\"8e03978e-40d5-43e8-bc93-6894a57f9324\") or bare")

// ParseKey reads a header value: the draft makes it a Structured Field
// string ("..."); the bare token many clients send is accepted too, and
// means the same key. The characters allowed cover UUIDs, ULIDs and
// base64; quotes and backslash escapes are refused rather than decoded.
func ParseKey(v []byte) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if len(v) == 0 || len(v) > MaxKeyLen {
		return "", ErrBadKey
	}
	for _, c := range v {
		if !keyChar(c) {
			return "", ErrBadKey
		}
	}
	return string(v), nil
}

func keyChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '~', '+', '/', '=':
		return true
	}
	return false
}

// Fingerprint identifies a request, so that a key sent again with a
// different one can be refused: the method, the request target, the
// If-Match precondition and the body, each length-prefixed so no two
// requests run together into the same bytes.
func Fingerprint(method, target, ifMatch, body []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{method, target, ifMatch, body} {
		var n [8]byte
		for i, l := 0, uint64(len(part)); i < 8; i, l = i+1, l>>8 {
			n[i] = byte(l)
		}
		h.Write(n[:])
		h.Write(part)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// Store is what the pruner needs; *store.DB provides it.
type Store interface {
	// PruneIdempotencyKeys deletes, in batches, the answers expired by now.
	PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error)
}

// Pruner deletes expired answers in the background. Start it after the
// store is open and Stop it before the store is closed.
type Pruner struct {
	store  Store
	every  time.Duration
	log    *slog.Logger
	pruned *vm.Counter
	errs   *vm.Counter

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewPruner returns a pruner for answers kept ttl (api.idempotency_ttl):
// it runs every minute, or every ttl when that is shorter, so no answer
// outlives its ttl by more than that. It counts rows deleted and failed
// runs in set (idempotency_keys_pruned_total, idempotency_prune_errors_total).
func NewPruner(s Store, ttl time.Duration, set *vm.Set, log *slog.Logger) *Pruner {
	return &Pruner{
		store:  s,
		every:  min(ttl, time.Minute),
		log:    log,
		pruned: set.NewCounter("idempotency_keys_pruned_total"),
		errs:   set.NewCounter("idempotency_prune_errors_total"),
	}
}

// Start runs the pruner until Stop.
func (p *Pruner) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go p.run(ctx)
}

// Stop ends the pruner, cutting short a run in progress, and waits for it.
func (p *Pruner) Stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *Pruner) run(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.store.PruneIdempotencyKeys(ctx, time.Now())
		p.pruned.Add(int(n))
		switch {
		case ctx.Err() != nil:
			return // stopping: the next process prunes what is left
		case err != nil:
			p.errs.Inc()
			p.log.Warn("idempotency keys: prune", "err", err)
		case n > 0:
			p.log.Info("idempotency keys pruned", "keys", n)
		}
	}
}

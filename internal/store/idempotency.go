package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Idempotency keys: a Write with a Key runs at most once per caller and
// key. Its Answer is written to idempotency_keys in the write's own
// transaction, so either both commit or neither does: a client that lost
// the answer (a dropped connection, a process killed between the commit
// and the reply) gets it back from any replica by retrying.
//
// Inside that transaction the stored answer is looked up first. On
// PostgreSQL a transaction-scoped advisory lock on the key comes before
// the lookup: a second request with the key, on any replica, that finds
// the lock taken answers ErrKeyInFlight at once instead of queueing behind
// the first. On SQLite every write transaction holds the one write lock
// for its whole length, so a second request waits (up to db.timeout) and
// then finds the stored answer.

// Key is an idempotency key, as Write takes it.
type Key struct {
	// Scope is whose key it is: a digest of the caller's credential, so
	// one caller never sees another's answers.
	Scope string
	// Key is the client's Idempotency-Key.
	Key string
	// Fingerprint identifies the request (method, path, body ...): the
	// same key with another fingerprint is ErrKeyReused.
	Fingerprint [sha256.Size]byte
	// TTL is how long the answer is kept for retries (api.idempotency_ttl).
	TTL time.Duration
}

var (
	// ErrKeyInFlight reports that a request with the same key is being
	// handled now (PostgreSQL, any replica): callers answer 409 with
	// Retry-After.
	ErrKeyInFlight = errors.New("store: idempotency key in use by a request in flight")
	// ErrKeyReused reports that the key was used for a different request:
	// callers answer 422.
	ErrKeyReused = errors.New("store: idempotency key used for another request")
)

const (
	sqlKeyAnswer = `SELECT fingerprint, status, content_type, location, etag, body FROM idempotency_keys
WHERE scope = $1 AND idem_key = $2 AND expires_at > $3`
	// An expired row that pruning has not reached yet is replaced.
	sqlSaveKeyAnswer = `INSERT INTO idempotency_keys
  (scope, idem_key, fingerprint, status, content_type, location, etag, body, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (scope, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status,
  content_type = excluded.content_type, location = excluded.location, etag = excluded.etag,
  body = excluded.body, created_at = excluded.created_at, expires_at = excluded.expires_at`
	sqlPruneKeys = `DELETE FROM idempotency_keys WHERE (scope, idem_key) IN
  (SELECT scope, idem_key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`
	sqlKeyLock = `SELECT pg_try_advisory_xact_lock($1)`
)

// Answer is what a write answered its client: rendered once by the
// caller from what the write changed, inside its transaction, and stored
// with the write's idempotency key if it has one.
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

// keyPruneBatch is the most rows one prune statement deletes.
const keyPruneBatch = 5000

// replay turns a stored row into the answer to send again, or
// ErrKeyReused when it was stored for another request.
func replay(k *Key, fingerprint []byte, ans Answer) (Answer, error) {
	if !bytes.Equal(fingerprint, k.Fingerprint[:]) {
		return Answer{}, ErrKeyReused
	}
	ans.Replayed = true
	return ans, nil
}

// saveArgs are the arguments of sqlSaveKeyAnswer.
func saveArgs(k *Key, ans Answer) []any {
	now := time.Now()
	return []any{k.Scope, k.Key, k.Fingerprint[:], ans.Status, ans.ContentType, ans.Location, ans.ETag,
		nonNil(ans.Body), now.UnixMilli(), now.Add(k.TTL).UnixMilli()}
}

// nonNil gives an empty body (a 204) as zero bytes rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// lockID is the advisory lock of a scoped key: 64 bits of its SHA-256.
func lockID(k *Key) int64 {
	h := sha256.New()
	h.Write([]byte("idempotency\x00"))
	h.Write([]byte(k.Scope))
	h.Write([]byte{0})
	h.Write([]byte(k.Key))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// storedAnswer takes k's advisory lock for the rest of the transaction
// on PostgreSQL (ErrKeyInFlight when another transaction holds it) and
// reads the live answer stored for k.
func (tx *Tx) storedAnswer(k *Key) (Answer, bool, error) {
	if tx.pg != nil {
		var locked bool
		if err := tx.QueryRow(sqlKeyLock, lockID(k)).Scan(&locked); err != nil {
			return Answer{}, false, fmt.Errorf("lock idempotency key: %w", err)
		}
		if !locked {
			return Answer{}, false, ErrKeyInFlight
		}
	}
	var (
		ans Answer
		fp  []byte
	)
	err := tx.QueryRow(sqlKeyAnswer, k.Scope, k.Key, time.Now().UnixMilli()).
		Scan(&fp, &ans.Status, &ans.ContentType, &ans.Location, &ans.ETag, &ans.Body)
	if errors.Is(err, ErrNotFound) {
		return Answer{}, false, nil
	}
	if err != nil {
		return Answer{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	ans, err = replay(k, fp, ans)
	return ans, true, err
}

// saveAnswer stores ans for k in the transaction.
func (tx *Tx) saveAnswer(k *Key, ans Answer) error {
	if _, err := tx.Exec(sqlSaveKeyAnswer, saveArgs(k, ans)...); err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes the answers that expired by now, in
// batches, and returns how many.
func (db *DB) PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	n, err := pruneInBatches(keyPruneBatch, []pruneStatement{{sqlPruneKeys, []any{now.UnixMilli(), keyPruneBatch}}},
		func(q string, args []any) (int64, error) { return db.Exec(ctx, q, args...) })
	if err != nil {
		return n, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return n, nil
}

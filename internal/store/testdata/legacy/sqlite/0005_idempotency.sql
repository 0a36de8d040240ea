-- Answers of writes made with an Idempotency-Key, written in the write's own
-- transaction, so a change and its record commit or vanish together. A key
-- belongs to one caller (scope: a digest of its credential). fingerprint is
-- the SHA-256 of the request; times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    fingerprint  BLOB    NOT NULL,
    status       INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    location     TEXT    NOT NULL,
    etag         TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- The rows pruning looks for.
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);

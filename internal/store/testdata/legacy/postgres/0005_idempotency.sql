-- Answers of writes made with an Idempotency-Key, written in the write's own
-- transaction, so a change and its record commit or vanish together. A key
-- belongs to one caller (scope: a digest of its credential). fingerprint is
-- the SHA-256 of the request; times are Unix milliseconds from the writing
-- replica's clock, as on SQLite.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        text    NOT NULL,
    idem_key     text    NOT NULL,
    fingerprint  bytea   NOT NULL,
    status       integer NOT NULL,
    content_type text    NOT NULL,
    location     text    NOT NULL,
    etag         text    NOT NULL,
    body         bytea   NOT NULL,
    created_at   bigint  NOT NULL,
    expires_at   bigint  NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- The rows pruning looks for.
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);

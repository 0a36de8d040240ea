-- The webhook outbox: one row per change event and receiver URL, written in
-- the same transaction as the change, so an event exists exactly when its
-- change was committed. state: 0 pending, 1 delivered, 2 given up. Times are
-- Unix milliseconds.
CREATE TABLE IF NOT EXISTS webhook_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    occurred_at     TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    state           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    leased_until    INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    done_at         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT ''
);

-- The head of each URL's queue, and the rows pruning looks for.
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox (url, seq) WHERE state = 0;
CREATE INDEX IF NOT EXISTS webhook_outbox_done ON webhook_outbox (done_at) WHERE state <> 0;

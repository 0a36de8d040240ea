-- Notes, and the count that holds notes.max_notes: a create takes a place
-- in note_count in the transaction that inserts, so the cap holds however
-- many replicas create at once.
CREATE TABLE notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL -- Unix time in microseconds
);

CREATE TABLE note_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO note_count (id, n) VALUES (1, 0);

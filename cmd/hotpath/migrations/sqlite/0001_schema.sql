-- World and Fortune as the TechEmpower benchmarks define them. Identifiers stay
-- unquoted so the same SQL text works on both drivers.
CREATE TABLE IF NOT EXISTS World (
    id           INTEGER PRIMARY KEY,
    randomNumber INTEGER NOT NULL DEFAULT 0
);

-- AUTOINCREMENT keeps ids of deleted fortunes from being handed out again.
CREATE TABLE IF NOT EXISTS Fortune (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL
);

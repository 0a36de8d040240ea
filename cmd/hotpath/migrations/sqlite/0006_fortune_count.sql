-- fortune_count holds the number of rows in Fortune, kept by triggers, so a
-- create can check api.max_fortunes in the statement that inserts, without
-- counting the table. It starts from the rows already there.
CREATE TABLE IF NOT EXISTS fortune_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT OR IGNORE INTO fortune_count (id, n) SELECT 1, count(*) FROM Fortune;

CREATE TRIGGER IF NOT EXISTS fortune_count_insert AFTER INSERT ON Fortune
BEGIN
    UPDATE fortune_count SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER IF NOT EXISTS fortune_count_delete AFTER DELETE ON Fortune
BEGIN
    UPDATE fortune_count SET n = n - 1 WHERE id = 1;
END;

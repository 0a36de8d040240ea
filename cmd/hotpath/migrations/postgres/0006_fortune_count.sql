-- fortune_count holds the number of rows in Fortune, kept by triggers, so a
-- create can check api.max_fortunes in the statement that inserts, without
-- counting the table. The lock keeps replicas still running the previous
-- version from inserting between the count and the triggers.
LOCK TABLE Fortune IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE IF NOT EXISTS fortune_count (
    id integer PRIMARY KEY CHECK (id = 1),
    n  integer NOT NULL
);
INSERT INTO fortune_count (id, n) SELECT 1, count(*) FROM Fortune ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION fortune_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE fortune_count SET n = n + 1 WHERE id = 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE fortune_count SET n = n - 1 WHERE id = 1;
    ELSE -- TRUNCATE
        UPDATE fortune_count SET n = 0 WHERE id = 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER fortune_count_insert AFTER INSERT ON Fortune
    FOR EACH ROW EXECUTE FUNCTION fortune_count_change();
CREATE TRIGGER fortune_count_delete AFTER DELETE ON Fortune
    FOR EACH ROW EXECUTE FUNCTION fortune_count_change();
CREATE TRIGGER fortune_count_truncate AFTER TRUNCATE ON Fortune
    FOR EACH STATEMENT EXECUTE FUNCTION fortune_count_change();

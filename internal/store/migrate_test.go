package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
)

// logRecords keeps the messages a store logged, with their attributes.
type logRecords struct {
	mu   sync.Mutex
	recs []logRecord
}

type logRecord struct {
	msg   string
	attrs map[string]string
}

// recordLogs returns a logger that records into the returned logRecords
// and also writes to the test's log.
func recordLogs(t testing.TB) (*slog.Logger, *logRecords) {
	r := &logRecords{}
	return slog.New(recordingHandler{r, testLogger(t).Handler()}), r
}

// messages returns the records logged with msg, and forgets every record.
func (r *logRecords) take(msg string) []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRecord
	for _, rec := range r.recs {
		if rec.msg == msg {
			out = append(out, rec)
		}
	}
	r.recs = nil
	return out
}

type recordingHandler struct {
	r    *logRecords
	next slog.Handler
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordingHandler) Handle(ctx context.Context, rec slog.Record) error {
	attrs := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, logRecord{rec.Message, attrs})
	h.r.mu.Unlock()
	return h.next.Handle(ctx, rec)
}

func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h } // the store adds none
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }

// steps lists component/version of the records, in order.
func steps(recs []logRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.attrs["component"]+"/"+r.attrs["version"])
	}
	return out
}

// legacyDatabase makes the database today's main made: the migration files
// of testdata/legacy/<driver> up to version upTo, each applied in its own
// transaction and recorded in schema_migrations, as its migrate did.
func legacyDatabase(t *testing.T, e env, upTo int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "legacy", e.opts.Driver, "*.sql"))
	if err != nil || len(files) != 6 {
		t.Fatalf("legacy migrations: %v, %v; want six files", files, err)
	}
	type file struct {
		version int
		name    string
		sql     string
	}
	var ms []file
	for _, f := range files {
		num, name, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".sql"), "_")
		v, err := strconv.Atoi(num)
		b, rerr := os.ReadFile(f)
		if err != nil || rerr != nil {
			t.Fatal(f, err, rerr)
		}
		if v <= upTo {
			ms = append(ms, file{v, name, string(b)})
		}
	}
	ctx := context.Background()
	switch e.opts.Driver {
	case "sqlite":
		if err := os.MkdirAll(filepath.Dir(e.opts.DSN), 0o755); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", e.opts.DSN+"?_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, m := range ms {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER PRIMARY KEY,
				name       TEXT NOT NULL,
				applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`, m.sql} {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					t.Fatalf("legacy %d: %v", m.version, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	case "postgres":
		pgRaw(t, e.opts.DSN, func(c *pgx.Conn) error {
			for _, m := range ms {
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockKey)); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
						version    integer PRIMARY KEY,
						name       text NOT NULL,
						applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, m.sql); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
					return err
				})
				if err != nil {
					t.Fatalf("legacy %d: %v", m.version, err)
				}
			}
			return nil
		})
	}
}

// referenceComponent is the reference service's migrations as they were
// released (testdata/reference): versions 1, 2 and 6 of the one
// sequence, the component that claims them when a legacy database is
// upgraded. Tests may name its World and Fortune; nothing else does.
func referenceComponent() Component {
	return Component{Name: "reference", FS: os.DirFS(filepath.Join("testdata", "reference"))}
}

// legacyFingerprint is the request of the idempotency answer the legacy
// database holds.
var legacyFingerprint = sha256.Sum256([]byte("legacy request"))

// writeLegacyRows writes what a running legacy server would have: a
// fortune, an idempotency answer and a pending outbox event.
func writeLegacyRows(t *testing.T, e env) {
	t.Helper()
	now := time.Now().UnixMilli()
	e.exec(t, `INSERT INTO Fortune (message) VALUES ($1)`, "written by the old binary")
	e.exec(t, `INSERT INTO idempotency_keys (scope, idem_key, fingerprint, status, content_type, location, etag, body, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, "c", "legacy", legacyFingerprint[:], 201, "application/json", "/f/13", `"f13"`,
		[]byte(`{"id":13}`), now, now+time.Hour.Milliseconds())
	e.exec(t, `INSERT INTO webhook_outbox (event_id, url, type, occurred_at, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		"legacy-event", hookA, "fortune.created", "2024-01-01T00:00:00Z", `{"id":13}`, now)
}

// The queries that list what a table of migrations records, per driver.
func migrationQueries(driver string) (legacy, adopted, owners, tables string) {
	if driver == "sqlite" {
		return `SELECT group_concat(version || '@' || applied_at, ' ') FROM (SELECT * FROM schema_migrations ORDER BY version)`,
			`SELECT group_concat(version || '@' || applied_at, ' ') FROM (SELECT * FROM hotpath_migrations ORDER BY version, component)`,
			`SELECT group_concat(component || '/' || version || '/' || name, ' ') FROM (SELECT * FROM hotpath_migrations ORDER BY version, component)`,
			`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = `
	}
	return `SELECT string_agg(version || '@' || applied_at::text, ' ' ORDER BY version) FROM schema_migrations`,
		`SELECT string_agg(version || '@' || applied_at::text, ' ' ORDER BY version, component) FROM hotpath_migrations`,
		`SELECT string_agg(component || '/' || version || '/' || name, ' ' ORDER BY version, component) FROM hotpath_migrations`,
		`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = `
}

// TestLegacyDatabaseUpgradesInPlace opens a database made by the store
// of one migration sequence: every legacy record goes to the component
// that declares it, keeping its time; nothing is applied again (the seed
// must not run twice); the rows written before are all there and work;
// a second open changes nothing.
func TestLegacyDatabaseUpgradesInPlace(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			legacyDatabase(t, e, 6)
			writeLegacyRows(t, e)
			legacyQ, adoptedQ, ownersQ, tableQ := migrationQueries(d.name)
			legacyApplied := e.text(t, legacyQ)
			worldSum := e.scalar(t, "SELECT sum(randomNumber) FROM World")

			log, recs := recordLogs(t)
			e.opts.Logger, e.opts.OutboxURLs = log, []string{hookA}
			e.opts.Components = []Component{referenceComponent()}
			db := e.open(t)
			if got := steps(recs.take("migration applied")); len(got) != 0 {
				t.Errorf("applied %v on a database that had them all", got)
			}
			check := func(what string) {
				t.Helper()
				for q, want := range map[string]int64{
					tableQ + "'schema_migrations'":                                                0,
					"SELECT count(*) FROM Fortune":                                                13,
					"SELECT n FROM fortune_count":                                                 13,
					"SELECT count(*) FROM World":                                                  10000,
					"SELECT sum(randomNumber) FROM World":                                         worldSum,
					"SELECT count(*) FROM idempotency_keys":                                       1,
					"SELECT count(*) FROM webhook_outbox":                                         1,
					"SELECT count(*) FROM Fortune WHERE message LIKE 'written by the old binary'": 1,
				} {
					if n := e.scalar(t, q); n != want {
						t.Errorf("%s: %s = %d, want %d", what, q, n, want)
					}
				}
				want := "reference/1/schema reference/2/seed hotpath/3/outbox hotpath/4/outbox_trace hotpath/5/idempotency reference/6/fortune_count"
				if got := e.text(t, ownersQ); got != want {
					t.Errorf("%s: hotpath_migrations\n got %s\nwant %s", what, got, want)
				}
				if got := e.text(t, adoptedQ); got != legacyApplied {
					t.Errorf("%s: applied_at\n got %s\nwant %s (kept from schema_migrations)", what, got, legacyApplied)
				}
			}
			check("after the upgrade")

			// The legacy answer replays, and the legacy event is delivered.
			ran := false
			ans, err := db.Write(context.Background(), &Key{Scope: "c", Key: "legacy", Fingerprint: legacyFingerprint, TTL: time.Hour},
				func(tx *Tx) error {
					ran = true
					_, err := tx.Exec(`INSERT INTO Fortune (message) VALUES ($1)`, "again")
					return err
				}, func() (Answer, error) { return Answer{Status: 201}, nil })
			if err != nil || !ans.Replayed || string(ans.Body) != `{"id":13}` || ans.Location != "/f/13" || ran {
				t.Errorf("retry of the legacy request: %+v, %v, fn ran %v; want the stored answer and fn not run", ans, err, ran)
			}
			if ev, ok := claim(t, db, hookA, "me"); !ok || ev.ID != "legacy-event" || string(ev.Data) != `{"id":13}` {
				t.Errorf("claim: %+v, %v; want the legacy event", ev, ok)
			}
			closeDB(t, db)

			recs.take("")
			e.open(t)
			if got := recs.take("migration applied"); len(got) != 0 {
				t.Errorf("second open applied %v", steps(got))
			}
			check("after a second open")
		})
	}
}

// TestLegacyDatabaseOfAnOlderReleaseGetsWhatItLacks: a database that
// stopped at version 5 has 1..5 adopted and only fortune_count applied.
func TestLegacyDatabaseOfAnOlderReleaseGetsWhatItLacks(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			legacyDatabase(t, e, 5)
			e.exec(t, `INSERT INTO Fortune (message) VALUES ($1)`, "written by the old binary")
			log, recs := recordLogs(t)
			e.opts.Logger, e.opts.Components = log, []Component{referenceComponent()}
			e.open(t)
			if got, want := steps(recs.take("migration applied")), []string{"reference/6"}; !slices.Equal(got, want) {
				t.Errorf("applied %v, want %v", got, want)
			}
			if n := e.scalar(t, "SELECT n FROM fortune_count"); n != 13 {
				t.Errorf("fortune_count = %d, want the 13 rows of Fortune", n)
			}
			_, _, ownersQ, _ := migrationQueries(d.name)
			want := "reference/1/schema reference/2/seed hotpath/3/outbox hotpath/4/outbox_trace hotpath/5/idempotency reference/6/fortune_count"
			if got := e.text(t, ownersQ); got != want {
				t.Errorf("hotpath_migrations\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestLegacyDatabaseOfAnotherServiceIsRefused: a legacy record that no
// component declares stops the open, naming it, with nothing changed.
func TestLegacyDatabaseOfAnotherServiceIsRefused(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			legacyDatabase(t, e, 6)
			e.exec(t, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, 7, "notes")
			e.opts.Components = []Component{referenceComponent()}
			db, err := Open(context.Background(), e.opts)
			if err == nil {
				closeDB(t, db)
				t.Fatal("opened a database whose schema_migrations records a migration no component declares")
			}
			if !errors.Is(err, ErrForeignDatabase) || !strings.Contains(err.Error(), "version 7 (notes)") {
				t.Errorf("open: %v; want ErrForeignDatabase naming version 7 (notes)", err)
			}
			_, _, _, tableQ := migrationQueries(d.name)
			for q, want := range map[string]int64{
				"SELECT count(*) FROM schema_migrations": 7,
				tableQ + "'hotpath_migrations'":          0,
			} {
				if n := e.scalar(t, q); n != want {
					t.Errorf("after the refused open %s = %d, want %d", q, n, want)
				}
			}
		})
	}
}

// notesComponent is a component of a service of its own: three
// migrations whose versions sort differently as numbers than they would
// unpadded, each logging its step in notes_steps.
func notesComponent() Component {
	step := func(v int) string {
		return "INSERT INTO notes_steps (version) VALUES (" + strconv.Itoa(v) + ");\n"
	}
	return Component{Name: "notes", FS: fstest.MapFS{
		"sqlite/0001_notes.sql": {Data: []byte(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE notes_steps (step INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL);
` + step(1))},
		"sqlite/0002_index.sql": {Data: []byte(`CREATE INDEX notes_body ON notes (body);` + "\n" + step(2))},
		"sqlite/0010_more.sql":  {Data: []byte(step(10))},
		"postgres/0001_notes.sql": {Data: []byte(`CREATE TABLE notes (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text NOT NULL);
CREATE TABLE notes_steps (step integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, version integer NOT NULL);
` + step(1))},
		"postgres/0002_index.sql": {Data: []byte(`CREATE INDEX notes_body ON notes (body);` + "\n" + step(2))},
		"postgres/0010_more.sql":  {Data: []byte(step(10))},
	}}
}

// tagsComponent is a second component, with a version 1 of its own.
func tagsComponent() Component {
	return Component{Name: "tags", FS: fstest.MapFS{
		"sqlite/0001_tags.sql":   {Data: []byte(`CREATE TABLE tags (name TEXT PRIMARY KEY);`)},
		"postgres/0001_tags.sql": {Data: []byte(`CREATE TABLE tags (name text PRIMARY KEY);`)},
	}}
}

// TestComponentMigrationsApplyInOrderOnce: the framework's migrations
// come first, then each component's in Options order, each in version
// order, each once; a component added later gets its migrations at the
// next open.
func TestComponentMigrationsApplyInOrderOnce(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			e := d.env(t)
			log, recs := recordLogs(t)
			e.opts.Logger = log
			e.opts.Components = []Component{libraryComponent(), notesComponent()}
			closeDB(t, e.open(t))
			want := []string{"hotpath/3", "hotpath/4", "hotpath/5", "library/1", "notes/1", "notes/2", "notes/10"}
			if got := steps(recs.take("migration applied")); !slices.Equal(got, want) {
				t.Errorf("first open applied\n %v\nwant %v", got, want)
			}
			order := map[string]string{
				"sqlite":   `SELECT group_concat(version, ' ') FROM (SELECT version FROM notes_steps ORDER BY step)`,
				"postgres": `SELECT string_agg(version::text, ' ' ORDER BY step) FROM notes_steps`,
			}[d.name]
			if got := e.text(t, order); got != "1 2 10" {
				t.Errorf("notes migrations ran in the order %q, want 1 2 10", got)
			}

			e.opts.Components = append(e.opts.Components, tagsComponent())
			db := e.open(t)
			if got := steps(recs.take("migration applied")); !slices.Equal(got, []string{"tags/1"}) {
				t.Errorf("second open, with tags added, applied %v; want only tags/1", got)
			}
			for q, want := range map[string]int64{
				"SELECT count(*) FROM notes_steps":                                    3,
				"SELECT count(*) FROM tags":                                           0,
				"SELECT count(*) FROM hotpath_migrations WHERE component = 'notes'":   3,
				"SELECT count(*) FROM hotpath_migrations WHERE component = 'tags'":    1,
				"SELECT count(*) FROM hotpath_migrations WHERE component = 'library'": 1,
				"SELECT count(*) FROM hotpath_migrations WHERE component = 'hotpath'": 3,
			} {
				if n := e.scalar(t, q); n != want {
					t.Errorf("%s = %d, want %d", q, n, want)
				}
			}
			if n := mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada"); n != 1 {
				t.Errorf("insert into the first component's table with more components: %d rows, want 1", n)
			}
		})
	}
}

// TestComponentRulesRefused: what cannot be applied safely stops the open
// before the database is touched, with an error naming the component.
func TestComponentRulesRefused(t *testing.T) {
	file := func(names ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, n := range names {
			m["sqlite/"+n] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			m["postgres/"+n] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		return m
	}
	notes := func(fsys fstest.MapFS) Component { return Component{Name: "notes", FS: fsys} }
	for _, c := range []struct {
		what  string
		comps []Component
		want  string // in the error
	}{
		{"no underscore", []Component{notes(file("0001-notes.sql"))}, "0001-notes.sql"},
		{"no version", []Component{notes(file("notes_a.sql"))}, "notes_a.sql"},
		{"no name", []Component{notes(file("0001_.sql"))}, "0001_.sql"},
		{"version 0", []Component{notes(file("0000_zero.sql"))}, "0000_zero.sql"},
		{"not .sql", []Component{notes(file("0001_notes.txt"))}, "0001_notes.txt"},
		{"repeated version", []Component{notes(file("0001_a.sql", "0001_b.sql"))}, "version 1 is not above 1"},
		{"unpadded", []Component{notes(file("9_a.sql", "10_b.sql"))}, "9_a.sql"},
		{"a directory", []Component{notes(fstest.MapFS{"sqlite/0001_a.sql/x": {}, "postgres/0001_a.sql/x": {}})}, "0001_a.sql"},
		{"no driver directory", []Component{notes(fstest.MapFS{"0001_a.sql": {}})}, "notes"},
		{"two of one name", []Component{notesComponent(), notesComponent()}, `"notes"`},
		{"the framework's name", []Component{{Name: "hotpath", FS: file("0001_a.sql")}}, `"hotpath"`},
		{"no name at all", []Component{{FS: file("0001_a.sql")}}, `""`},
		{"a space in the name", []Component{{Name: "my notes", FS: file("0001_a.sql")}}, `"my notes"`},
		{"no FS", []Component{{Name: "notes"}}, `"notes"`},
	} {
		for _, d := range drivers {
			e := sqliteEnv(t)
			if d.name == "postgres" {
				e.opts = Options{Driver: "postgres", DSN: "postgres://nobody@127.0.0.1:1/never"} // never reached
			}
			e.opts.Components = c.comps
			db, err := Open(context.Background(), e.opts)
			if err == nil {
				closeDB(t, db)
				t.Errorf("%s, %s: opened; want an error", c.what, d.name)
				continue
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s, %s: %v; want an error naming %s", c.what, d.name, err, c.want)
			}
			if d.name == "sqlite" {
				if _, statErr := os.Stat(e.opts.DSN); !errors.Is(statErr, os.ErrNotExist) {
					t.Errorf("%s: the database file was created (%v)", c.what, statErr)
				}
			}
		}
	}
}

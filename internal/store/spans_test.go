package store

import (
	"context"
	"errors"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/testenv"
	"github.com/hotpath/hotpath/internal/tracing"
)

// TestSpansLastAsLongAsTheCall: every call made under a recorded trace
// has a span named after its statement, which ends when the call does: a
// Row's at Scan, Rows' at Close, a batch's (one for all its queries) at
// Close; a Write has one per statement and one for its COMMIT, and a
// failure carries its class as error.type.
func TestSpansLastAsLongAsTheCall(t *testing.T) {
	otlp := testenv.NewOTLPReceiver(t)
	cfg := config.Default().Tracing
	cfg.Endpoint = otlp.URL
	tracer, err := tracing.New(cfg, "store-test", "v0", vm.NewSet(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx := tracer.Continue(context.Background(), "00-"+traceID+"-b7ad6b7169203331-01", "")
	db := sqliteEnv(t).open(t)
	mustExec(t, db, `INSERT INTO authors (id, name) VALUES ($1, $2)`, 1, "Ada") // untraced
	const pause = 30 * time.Millisecond

	row := db.QueryRow(ctx, `SELECT name FROM authors WHERE id = $1`, 1)
	time.Sleep(pause)
	rowScanned := time.Now()
	var name string
	if err := row.Scan(&name); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, `SELECT id FROM books`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(pause)
	rowsClosed := time.Now()
	rows.Close()

	b := AcquireBatch()
	b.Queue(`SELECT name FROM authors WHERE id = $1`, 1)
	b.Queue(`SELECT id FROM books WHERE id = $1`, 1)
	br := db.SendBatch(ctx, b)
	for range 2 {
		if err := br.QueryRow().Scan(&name); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	ReleaseBatch(b)

	_, err = db.Write(ctx, nil, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO books (author, title) VALUES ($1, $2)`, 1, "Notes"); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE authors SET name = $1 WHERE id = $2`, "Ada", 1)
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Write(ctx, nil, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO authors (id, name) VALUES ($1, $2)`, 2, "Ada")
		return err
	}, nil)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate author: %v, want ErrConflict", err)
	}

	if err := tracer.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name    string
		errType any // nil for none
	}{
		{"SELECT authors", nil},
		{"SELECT books", nil},
		{"SELECT authors", nil}, // the batch
		{"INSERT books", nil},
		{"UPDATE authors", nil},
		{"COMMIT", nil},
		{"INSERT authors", "conflict"},
	}
	spans := otlp.WaitFor(5*time.Second, func(s []testenv.Span) bool { return len(s) >= len(want) })
	if len(spans) != len(want) {
		t.Fatalf("got %d spans, want %d: %+v", len(spans), len(want), spans)
	}
	for i, w := range want {
		s := spans[i]
		if s.Name != w.name || s.Attrs["error.type"] != w.errType || s.TraceID != traceID || s.Attrs["db.system.name"] != "sqlite" {
			t.Errorf("span %d: %s, error.type %v, trace %s, system %v; want %s, %v, %s, sqlite",
				i, s.Name, s.Attrs["error.type"], s.TraceID, s.Attrs["db.system.name"], w.name, w.errType, traceID)
		}
	}
	if s := spans[0]; s.End.Before(rowScanned) || s.End.Sub(s.Start) < pause {
		t.Errorf("Row's span %s..%s ends before its Scan at %s", s.Start, s.End, rowScanned)
	}
	if s := spans[1]; s.End.Before(rowsClosed) || s.End.Sub(s.Start) < pause {
		t.Errorf("Rows' span %s..%s ends before their Close at %s", s.Start, s.End, rowsClosed)
	}
	if q := spans[2].Attrs["db.query.text"]; q != `SELECT name FROM authors WHERE id = $1` {
		t.Errorf("the batch's span has the text %v, want its first statement's, as written", q)
	}
}

package idempotency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"go.uber.org/goleak"

	"github.com/hotpath/hotpath/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseKey(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLen)
	cases := []struct {
		header, key string
		ok          bool
	}{
		{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{`8e03978e-40d5-43e8-bc93-6894a57f9324`, "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{`01HZY5W3J0:retry_1.2~x`, "01HZY5W3J0:retry_1.2~x", true},
		{`"aGVsbG8+d29ybGQ/IQ=="`, "aGVsbG8+d29ybGQ/IQ==", true},
		{long, long, true},
		{`"` + long + `"`, long, true},
		{``, "", false},
		{`""`, "", false},
		{`"`, "", false},
		{long + "k", "", false},
		{`a b`, "", false},
		{`"a\"b"`, "", false},
		{`a,b`, "", false},
		{`a;b`, "", false},
		{`"abc`, "", false},
		{"caf\xc3\xa9", "", false},
		{"a\x00b", "", false},
		{"a\tb", "", false},
	}
	for _, c := range cases {
		got, err := ParseKey([]byte(c.header))
		if (err == nil) != c.ok || got != c.key {
			t.Errorf("Idempotency-Key %q: (%q, %v), want (%q, ok %v)", c.header, got, err, c.key, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("Idempotency-Key %q: %v, want ErrBadKey", c.header, err)
		}
	}
}

func TestFingerprintTellsRequestsApart(t *testing.T) {
	base := [4]string{"POST", "/v1/notes", "", `{"body":"a"}`}
	fp := func(p [4]string) [32]byte {
		return Fingerprint([]byte(p[0]), []byte(p[1]), []byte(p[2]), []byte(p[3]))
	}
	if first, again := fp(base), fp(base); first != again {
		t.Fatal("one request, two fingerprints")
	}
	for _, other := range [][4]string{
		{"PUT", base[1], base[2], base[3]},
		{base[0], "/v1/notes?x=1", base[2], base[3]},
		{base[0], base[1], `"f1"`, base[3]},
		{base[0], base[1], base[2], `{"body":"b"}`},
		{base[0], base[1], base[2], ` {"body":"a"}`},
		{base[0], base[1] + `"f1"`, "", base[3]}, // bytes moved between parts
	} {
		if fp(other) == fp(base) {
			t.Errorf("%q and %q share a fingerprint", other, base)
		}
	}
}

// TestPrunerDeletesExpiredAnswers runs the pruner on a real SQLite store
// holding expired answers, then on the store closed under it.
func TestPrunerDeletesExpiredAnswers(t *testing.T) {
	ctx := context.Background()
	notes := store.Component{Name: "notes", FS: fstest.MapFS{
		"sqlite/0001_notes.sql":   {Data: []byte(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);`)},
		"postgres/0001_notes.sql": {Data: []byte(`CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL);`)},
	}}
	s, err := store.Open(ctx, store.Options{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "keys.db"), Components: []store.Component{notes}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		k := &store.Key{Scope: "c", Key: fmt.Sprint("k", i), TTL: time.Millisecond}
		_, err := s.Write(ctx, k, func(tx *store.Tx) error {
			_, err := tx.Exec(`INSERT INTO notes (body) VALUES ($1)`, "m")
			return err
		}, func() (store.Answer, error) { return store.Answer{Status: 201}, nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	set := vm.NewSet()
	var log syncBuffer
	p := NewPruner(s, 20*time.Millisecond, set, slog.New(slog.NewTextHandler(&log, nil)))
	p.Start()
	metric := func(name string) string {
		var out bytes.Buffer
		set.WritePrometheus(&out)
		for _, line := range strings.Split(out.String(), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric("idempotency_keys_pruned_total") != "5" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := metric("idempotency_keys_pruned_total"); got != "5" {
		t.Errorf("idempotency_keys_pruned_total %q, want 5", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for metric("idempotency_prune_errors_total") == "0" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	if got := metric("idempotency_prune_errors_total"); got == "0" || got == "" {
		t.Errorf("prunes of a closed store not counted: idempotency_prune_errors_total %q", got)
	}
	if !strings.Contains(log.String(), "prune") {
		t.Errorf("a failed prune is not logged:\n%s", log.String())
	}
	if NewPruner(s, 24*time.Hour, vm.NewSet(), slog.New(slog.DiscardHandler)).every != time.Minute {
		t.Error("a day's ttl should prune every minute")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FuzzParseKey: whatever is accepted is 1..MaxKeyLen allowed characters.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{`"abc"`, `abc`, `""`, `"a"b"`, "a\x00", strings.Repeat("k", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		key, err := ParseKey([]byte(header))
		if err != nil {
			return
		}
		if len(key) == 0 || len(key) > MaxKeyLen {
			t.Fatalf("%q: accepted a key of %d bytes", header, len(key))
		}
		for i := 0; i < len(key); i++ {
			if !keyChar(key[i]) {
				t.Fatalf("%q: accepted %q with %q in it", header, key, key[i])
			}
		}
	})
}

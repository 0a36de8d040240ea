package tfb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestCountClamps(t *testing.T) {
	for raw, want := range map[string]int{"": 1, "foo": 1, "0": 1, "-5": 1, "1": 1, "20": 20, "500": 500, "501": 500, "1e3": 1, "7x": 1} {
		if got := Count(raw); got != want {
			t.Errorf("Count(%q) = %d, want %d", raw, got, want)
		}
	}
}

func TestSeedIsIdempotentAndUpdatesPersist(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "w.db"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if err := db.Seed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var worlds, fortunes, outOfRange int
	if err := db.lite.QueryRow("SELECT count(*), sum(randomNumber < 1 OR randomNumber > 10000) FROM World").Scan(&worlds, &outOfRange); err != nil {
		t.Fatal(err)
	}
	if err := db.lite.QueryRow("SELECT count(*) FROM Fortune").Scan(&fortunes); err != nil {
		t.Fatal(err)
	}
	if worlds != MaxWorldID || outOfRange != 0 || fortunes != len(StandardFortunes) {
		t.Fatalf("after two seeds: %d worlds (%d out of range), %d fortunes", worlds, outOfRange, fortunes)
	}

	updated, err := db.Update(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	last := map[int32]int32{}
	count := map[int32]int{}
	for _, w := range updated {
		last[w.ID] = w.RandomNumber
		count[w.ID]++
	}
	for id, rn := range last {
		if count[id] > 1 {
			continue // a repeated id keeps one of its new values
		}
		got, err := db.World(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.RandomNumber != rn {
			t.Errorf("world %d: stored %d, answered %d", id, got.RandomNumber, rn)
		}
	}
}

func TestFortunesPageSortsAndEscapes(t *testing.T) {
	sorted := AddAndSort(append([]Fortune(nil), StandardFortunes...))
	if len(sorted) != 13 || sorted[0].ID != 11 || sorted[5].ID != 0 || sorted[12].ID != 12 {
		t.Fatalf("order %v, want ids 11 first, 0 sixth, 12 last", sorted)
	}
	var tmpl strings.Builder
	if err := FortunesTemplate.Execute(&tmpl, sorted); err != nil {
		t.Fatal(err)
	}
	for name, page := range map[string]string{"template": tmpl.String(), "append": string(AppendFortunesHTML(nil, sorted))} {
		if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;alert(&#34;This") ||
			!strings.Contains(page, "aren&#39;t") || !strings.Contains(page, "フレームワークのベンチマーク") ||
			strings.Count(page, "<tr>") != 14 {
			t.Errorf("%s page is not the escaped 13-row table:\n%s", name, page)
		}
	}
}

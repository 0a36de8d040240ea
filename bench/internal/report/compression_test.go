package report

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// compressionFixture has /fortunes in three codings over two rounds (gzip
// in one, with errors) and an API page whose identity run is missing.
func compressionFixture() Compression {
	run := func(page, coding string, round int, rps, bytes, cpu float64, errors int64) CompressionRun {
		return CompressionRun{Page: page, Coding: coding, Round: round, RPS: rps, Requests: int64(rps),
			ResponseBytes: bytes, CPUPerRequestUS: cpu, Errors: errors}
	}
	const api = "/api/v1/fortunes?limit=100"
	return Compression{Server: "hotpath", Driver: "postgres", Duration: "10s", Warmup: "3s", Connections: 64, Threads: 1,
		Rounds: 2, Pages: []string{"/fortunes", api}, Codings: []string{"identity", "zstd", "br", "gzip"},
		Notes: []string{"Something could not be measured."},
		Runs: []CompressionRun{
			run("/fortunes", "identity", 1, 100, 1400, 50, 0),
			run("/fortunes", "zstd", 1, 80, 700, 60, 0),
			run("/fortunes", "gzip", 1, 90, 1000, 55, 3),
			run("/fortunes", "zstd", 2, 60, 700, 70, 0),
			run("/fortunes", "identity", 2, 120, 1400, 40, 0),
			run(api, "br", 1, 50, 800, 90, 0),
		}}
}

func TestCompressionSummaryTakesMediansPerPageAndCoding(t *testing.T) {
	c := compressionFixture()
	c.Summarize()
	var got []string
	for _, s := range c.Summary {
		got = append(got, s.Page+" "+s.Coding)
	}
	want := []string{"/fortunes identity", "/fortunes zstd", "/fortunes gzip", "/api/v1/fortunes?limit=100 br"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("summary rows %q, want %q", got, want)
	}
	zstd := c.Summary[1]
	if zstd.Rounds != 2 || zstd.RPS != 70 || zstd.ResponseBytes != 700 || zstd.CPUPerRequestUS != 65 || zstd.Errors != 0 {
		t.Errorf("zstd summary %+v, want 2 rounds, 70 req/s, 700 B, 65 µs, no errors", zstd)
	}
	if gzip := c.Summary[2]; gzip.Errors != 3 || gzip.Rounds != 1 {
		t.Errorf("gzip summary %+v, want its 3 errors over 1 round", gzip)
	}
}

func TestCompressionReport(t *testing.T) {
	c := compressionFixture()
	c.Summarize()
	md := string(Markdown(Results{Compression: &c}))
	for _, want := range []string{
		"## Compression: what it buys and costs",
		"status line and headers count as well as the body",
		"10s per run after a 3s warm-up in each coding;",
		"**Note:** Something could not be measured.",
		"| page | coding | req/s | ÷ identity | bytes per answer | CPU per request |\n|---|---|--:|--:|--:|--:|\n" +
			"| /fortunes | identity | 110 | 1.00× | 1,400 B | 45 µs |\n" +
			// 70/110 of the medians; rounds 1 and 2 paired 80/100 and 60/120.
			"| /fortunes | zstd | 70 | 0.64× [0.50–0.80] | 700 B (50 %) | 65 µs |\n" +
			"| /fortunes | gzip | 90 (3 errors) | 0.82× | 1,000 B (71 %) | 55 µs |\n" +
			"| /api/v1/fortunes?limit=100 | br | 50 | – | 800 B | 90 µs |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| /fortunes | br |") {
		t.Errorf("report.md has a /fortunes br row without runs:\n%s", md)
	}
	c.Warmup = "0s"
	if md := string(Markdown(Results{Compression: &c})); !strings.Contains(md, "10s per run without a warm-up;") {
		t.Errorf("report.md with -warmup 0s speaks of a warm-up:\n%s", md)
	}
}

func TestCompressionInResultsJSON(t *testing.T) {
	raw, err := json.Marshal(Results{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"compression"`) {
		t.Errorf("results without the part carry a compression field: %s", raw)
	}

	c := compressionFixture()
	c.Summarize()
	dir := t.TempDir()
	if err := Write(dir, Results{Compression: &c}); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Compression == nil || !reflect.DeepEqual(*back.Compression, c) {
		t.Errorf("results.json does not round-trip the part:\ngot  %+v\nwant %+v", back.Compression, c)
	}
	raw, err = json.Marshal(c.Runs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"response_bytes":1400`, `"cpu_per_request_us":50`, `"coding":"identity"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("run JSON %s lacks %s", raw, key)
		}
	}
}

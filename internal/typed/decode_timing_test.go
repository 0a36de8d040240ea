package typed

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

const widgetBody = `{"name":"widget","qty":3,"tags":["a","b"]}`

func widgetRequest() *fasthttp.RequestCtx {
	return request("application/json", widgetBody, "", nil, nil)
}

// TestDecodeAllocatesOnlyWhatTheValueHolds pins the small-body cost: the
// three strings and the slice of the result, nothing for the tokenizer,
// the path or the checks.
func TestDecodeAllocatesOnlyWhatTheValueHolds(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes pools drop items")
	}
	in := compile[widget](t)
	rc := widgetRequest()
	var w widget
	allocs := testing.AllocsPerRun(200, func() {
		if err := in.Decode(rc, &w); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 {
		t.Errorf("Decode(%s) allocates %.1f times, want at most 4 (name, two tags, the slice)", widgetBody, allocs)
	}
	if w.Name != "widget" || w.Qty != 3 || len(w.Tags) != 2 {
		t.Errorf("decoded %+v", w)
	}
}

// TestDecodeQueryAllocatesNothing: integer parameters and defaults cost
// no allocation.
func TestDecodeQueryAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes pools drop items")
	}
	type page struct {
		Limit int   `query:"limit" minimum:"1" maximum:"100" default:"20"`
		After int32 `query:"after" minimum:"0"`
		ID    int32 `path:"id" minimum:"1"`
	}
	in := compile[page](t)
	rc := request("", "", "limit=5&after=9", nil, map[string]string{"id": "3"})
	var p page
	allocs := testing.AllocsPerRun(200, func() {
		if err := in.Decode(rc, &p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || p != (page{5, 9, 3}) {
		t.Errorf("Decode of limit=5&after=9, id 3: %.1f allocations and %+v, want 0 and {5 9 3}", allocs, p)
	}
}

func BenchmarkDecodeSmallBody(b *testing.B) {
	in := compile[widget](b)
	rc := widgetRequest()
	var w widget
	b.ReportAllocs()
	b.SetBytes(int64(len(widgetBody)))
	for b.Loop() {
		if err := in.Decode(rc, &w); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeQuery(b *testing.B) {
	in := compile[pageQuery](b)
	rc := request("", "", "must=true&limit=5&after=9&sort=name", nil, nil)
	var q pageQuery
	b.ReportAllocs()
	for b.Loop() {
		if err := in.Decode(rc, &q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNested(b *testing.B) {
	in := compile[order](b)
	body := `{"address":{"city":"Oslo","zip":"01234"},"lines":[{"name":"a","count":1},{"name":"b\u00e9","count":255}],` +
		`"note":"n","labels":{"x":"1"},"due":"2024-05-06T07:08:09+02:00","price":1.5,"express":true,"ref":{"city":"c"},"priority":"low"}`
	rc := request("application/json", body, "", nil, nil)
	var o order
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := in.Decode(rc, &o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSmallBodyEncodingJSON is the bare twin: encoding/json
// into the same struct, with none of the strictness or the checks.
func BenchmarkDecodeSmallBodyEncodingJSON(b *testing.B) {
	body := []byte(widgetBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var w widget
		if err := json.Unmarshal(body, &w); err != nil {
			b.Fatal(err)
		}
	}
}

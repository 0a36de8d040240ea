package typed

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the nested order input. Decode must
// not panic, must answer only 400 or 422 for a bad body, and what it
// accepts must pass Check and read the same through encoding/json, which
// is laxer but agrees on every body that is strictly right.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"address":{"city":"Oslo"},"lines":[{"name":"a","count":1}],"note":null}`,
		`{"address":{"city":"O","zip":"01234"},"lines":[],"note":"x","labels":{"a":"b"},"due":"2024-01-02T03:04:05Z","price":1.5,"express":true,"ref":{"city":"c"},"priority":"high"}`,
		`{}`, `[]`, `null`, `{"address":{"city":"\u0000"}}`, `{"lines":[{"count":1e2}]}`, `{"a":{"b":[1,2,{}]}}`,
		`{"address":{"city":"a","city":"b"}}`, "{\"note\":\"\xff\"}", `{"note":"\ud800"}`, `{"labels":{"\ud83d\ude00":"x"}}`,
	} {
		f.Add(s)
	}
	in := compile[order](f)
	f.Fuzz(func(t *testing.T, body string) {
		var o order
		status, pe := run(t, in, request("application/json", body, "", nil, nil), &o)
		switch status {
		case 200:
			if errs := in.Check(&o); len(errs) > 0 {
				t.Fatalf("accepted %q, but Check finds %v", body, errs)
			}
			var std order
			if err := json.Unmarshal([]byte(body), &std); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if !o.Due.Equal(std.Due) {
				t.Fatalf("body %q: due %v, encoding/json reads %v", body, o.Due, std.Due)
			}
			o.Due = std.Due
			if !reflect.DeepEqual(o, std) {
				t.Fatalf("body %q: decoded %+v, encoding/json reads %+v", body, o, std)
			}
		case 400, 422:
			if pe.Detail == "" {
				t.Fatalf("body %q: %d with no detail", body, status)
			}
		default:
			t.Fatalf("body %q: status %d (%v)", body, status, pe)
		}
	})
}

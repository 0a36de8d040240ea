package typed

import (
	"mime"
	"strings"
	"testing"
)

// todaysMediaType is internal/api's check, on mime.ParseMediaType.
func todaysMediaType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

func TestJSONMediaTypeAgreesWithTodaysCheck(t *testing.T) {
	for _, ct := range []string{
		"application/json", "APPLICATION/JSON", " application/json ", "application/json;", "application/json; charset=utf-8",
		"application/json;charset=UTF-8", `application/json; charset="utf-8"`, "application/json ; charset = utf-8 ",
		"", "application/jsonx", "application/json; charset=latin1", "application/json; foo=bar", "text/json",
		"application/json; charset=utf-8; charset=utf-8", "application/json; charset=utf-8x", `application/json; charset="utf-8`,
		"application/json, text/plain", "application/json;;", "application/json; charset",
	} {
		if got, want := jsonMediaType([]byte(ct)), todaysMediaType(ct); got != want {
			t.Errorf("Content-Type %q: accepted %v, internal/api's check %v", ct, got, want)
		}
	}
}

// FuzzJSONMediaType: whatever jsonMediaType accepts, mime.ParseMediaType
// reads as application/json with at most a utf-8 charset.
func FuzzJSONMediaType(f *testing.F) {
	for _, s := range []string{"application/json", "application/json; charset=utf-8", `application/json;charset="UTF-8";`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if jsonMediaType([]byte(ct)) && !todaysMediaType(ct) {
			t.Fatalf("accepted %q, which mime.ParseMediaType does not read as JSON in utf-8", ct)
		}
	})
}

package openapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/internal/idempotency"
)

var keyPattern = regexp.MustCompile(IdempotencyKeyPattern)

// TestIdempotencyKeyPatternIsParseKey: a client that builds its keys from
// the schema is never refused, and a key the schema refuses never passes.
func TestIdempotencyKeyPatternIsParseKey(t *testing.T) {
	max := strings.Repeat("a", idempotency.MaxKeyLen)
	for _, k := range []string{
		"a", `"a"`, "8e03978e-40d5-43e8-bc93-6894a57f9324", `"8e03978e-40d5-43e8-bc93-6894a57f9324"`, "A-Za_z.0:9~+/=",
		max, `"` + max + `"`, max + "a", `"` + max + `a"`,
		"", `"`, `""`, `"""`, `"a`, `a"`, `"a"b"`, `a"b`, "a b", " a", "a\n", "a\x00", "é", `\"a\"`, "a,b", "a;b", "'a'",
	} {
		_, err := idempotency.ParseKey([]byte(k))
		if schema, server := keyPattern.MatchString(k), err == nil; schema != server {
			t.Errorf("key %.40q (%d bytes): the pattern accepts it %v, ParseKey %v", k, len(k), schema, server)
		}
	}
}

// FuzzIdempotencyKeyPattern looks for a key the pattern and ParseKey
// judge differently.
func FuzzIdempotencyKeyPattern(f *testing.F) {
	for _, s := range []string{"a", `"a"`, `"a`, `""`, strings.Repeat("x", 255), `"` + strings.Repeat("x", 256) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, k string) {
		_, err := idempotency.ParseKey([]byte(k))
		if schema, server := keyPattern.MatchString(k), err == nil; schema != server {
			t.Fatalf("key %q: the pattern accepts it %v, ParseKey %v", k, schema, server)
		}
	})
}

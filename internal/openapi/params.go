package openapi

import (
	"strconv"

	"github.com/hotpath/hotpath/internal/idempotency"
	"github.com/hotpath/hotpath/internal/typed"
)

// keyChars are the characters idempotency.ParseKey accepts in a key, as
// a class of the common subset of ECMA-262 and RE2.
const keyChars = `[A-Za-z0-9._~:+/=-]`

// IdempotencyKeyPattern is exactly idempotency.ParseKey's rule: 1 to
// 255 (idempotency.MaxKeyLen) key characters, quoted (a Structured Field
// string) or bare. A quote on one side only is refused, so the two
// spellings are two alternatives, not optional quotes.
const IdempotencyKeyPattern = `^(?:"` + keyChars + `{1,255}"|` + keyChars + `{1,255})$`

// IdempotencyKeyParam describes the Idempotency-Key request header.
func IdempotencyKeyParam() Param {
	return Param{
		Name: idempotency.Header,
		In:   "header",
		Description: "Makes the write safe to retry (draft-ietf-httpapi-idempotency-key-header): a Structured Field string such as " +
			"`\"8e03978e-40d5-43e8-bc93-6894a57f9324\"` (the bare token is accepted too), 1 to " + strconv.Itoa(idempotency.MaxKeyLen) +
			" characters of `A-Z a-z 0-9 - _ . : ~ + / =`, else 400. A retry with the same key and the same request gets the first answer again, " +
			"byte for byte, with Idempotency-Replayed: true; the same key with a different request is 422; while the first is still being handled it is 409 with Retry-After.",
		Schema: &typed.Schema{Type: typed.Types{"string"}, Pattern: IdempotencyKeyPattern},
	}
}

// IfNoneMatchParam describes the If-None-Match request header of reads
// that answer 304.
func IfNoneMatchParam() Param {
	return Param{
		Name:        "If-None-Match",
		In:          "header",
		Description: "ETags the client holds (a list, or `*`), compared weakly (RFC 9110): when one is current the answer is 304 with no body.",
		Schema:      &typed.Schema{Type: typed.Types{"string"}},
	}
}

// IfMatchParam describes the If-Match request header of conditional
// writes.
func IfMatchParam() Param {
	return Param{
		Name: "If-Match",
		In:   "header",
		Description: "Write only if the resource still has one of these ETags (strong comparison; `*`: any existing version). " +
			"Checked and written in one atomic step; otherwise 412 and nothing changes. A resource that does not exist fails it too.",
		Schema: &typed.Schema{Type: typed.Types{"string"}},
	}
}

package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/hotpath/hotpath/internal/webhook"
)

// validSignature is the receiver-side check printed in README.md, using
// only the standard library.
func validSignature(secret, body []byte, header string) bool {
	got, err := hex.DecodeString(strings.TrimPrefix(header, "sha256="))
	if err != nil || !strings.HasPrefix(header, "sha256=") {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// The README's receiver check accepts what hotpath signs and nothing else.
func ExampleSign() {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"id":"x","type":"fortune.created","time":"2026-01-01T00:00:00Z","data":{"id":1}}`)
	sig := webhook.Sign(secret, body)
	fmt.Println(sig)
	fmt.Println(validSignature(secret, body, sig))
	fmt.Println(validSignature([]byte("another key"), body, sig))
	fmt.Println(validSignature(secret, append(body, ' '), sig))
	// Output:
	// sha256=dc1789b48c1b0e7b0159c0114b9ed1181128082768188178a70d63945f8b7ac2
	// true
	// false
	// false
}

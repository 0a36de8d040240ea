package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/hotpath/hotpath/internal/store"
)

// Headers of every delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// exact body, keyed with webhooks.secret.
	SignatureHeader = "X-Hotpath-Signature"
	// EventIDHeader carries the event id, also the body's "id": receivers
	// drop an event whose id they have seen (delivery is at least once).
	EventIDHeader = "X-Hotpath-Event-Id"
)

// Sign returns the X-Hotpath-Signature value for body: "sha256=<hex>".
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is Sign(secret, body), comparing in
// constant time. Receivers written in Go can use it as is.
func Verify(secret, body []byte, signature string) bool {
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}

// envelope is the body of a delivery.
type envelope struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

// Body returns the JSON body delivered for ev:
// {"id":…,"type":…,"time":…,"data":{…}}. It depends only on ev, so every
// retry of an event sends the same bytes and the same signature.
func Body(ev store.OutboxEvent) ([]byte, error) {
	return json.Marshal(envelope{ID: ev.ID, Type: ev.Type, Time: ev.Time, Data: ev.Data})
}

package webhook

import (
	"testing"
	"time"
)

// TestReconfigureMovesEventsAndRotatesTheSecret adds a receiver, removes
// one and rotates the secret on a running dispatcher: changes made after
// the commit go to the new set of URLs, signed with the new secret, and a
// removed URL's pending event waits in the outbox until it comes back.
func TestReconfigureMovesEventsAndRotatesTheSecret(t *testing.T) {
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	fx := start(t, webhooks()) // no receivers yet: nothing recorded
	fx.put(t, 1, "11")

	commit, err := fx.d.Reconfigure([]string{a.URL}, secret)
	if err != nil {
		t.Fatal(err)
	}
	fx.put(t, 2, "22") // before the commit: still no receivers
	commit()
	fx.put(t, 3, "33")
	got := a.waitAccepted(t, 1, 5*time.Second)
	if !sameJSON(got[0].payload.Data, `{"id":3,"name":"33"}`) || !Verify([]byte(secret), got[0].body, got[0].header.Get(SignatureHeader)) {
		t.Errorf("first event after adding the receiver: %s, signature ok %v; want item 3 signed with the secret",
			got[0].payload.Data, Verify([]byte(secret), got[0].body, got[0].header.Get(SignatureHeader)))
	}

	const rotated = "rotated-secret-0123456789abcdef0123"
	commit, err = fx.d.Reconfigure([]string{b.URL}, rotated)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	fx.put(t, 4, "44")
	got = b.waitAccepted(t, 1, 5*time.Second)
	if !sameJSON(got[0].payload.Data, `{"id":4,"name":"44"}`) {
		t.Errorf("new receiver got %s, want item 4", got[0].payload.Data)
	}
	if !Verify([]byte(rotated), got[0].body, got[0].header.Get(SignatureHeader)) || Verify([]byte(secret), got[0].body, got[0].header.Get(SignatureHeader)) {
		t.Errorf("delivery after the rotation is not signed with the new secret alone")
	}
	time.Sleep(200 * time.Millisecond) // ten polls
	if n := len(a.accepted()); n != 1 {
		t.Errorf("removed receiver got %d events, want only the one from before its removal", n)
	}

	// a comes back: it gets what was recorded for it while listed, and
	// only that (item 4 was recorded for b alone).
	commit, err = fx.d.Reconfigure([]string{a.URL, b.URL}, rotated)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	fx.put(t, 5, "55")
	got = a.waitAccepted(t, 2, 5*time.Second)
	if !sameJSON(got[1].payload.Data, `{"id":5,"name":"55"}`) || !Verify([]byte(rotated), got[1].body, got[1].header.Get(SignatureHeader)) {
		t.Errorf("returning receiver's next event %s, want item 5 signed with the new secret", got[1].payload.Data)
	}
	b.waitAccepted(t, 2, 5*time.Second)
}

func TestReconfigureRefusesABadURLAndChangesNothing(t *testing.T) {
	a := newReceiver(t, nil)
	fx := start(t, webhooks(a.URL))
	if _, err := fx.d.Reconfigure([]string{"ftp://nowhere"}, secret); err == nil {
		t.Fatal("Reconfigure accepted an ftp:// URL")
	}
	fx.put(t, 6, "66")
	if got := a.waitAccepted(t, 1, 5*time.Second); !sameJSON(got[0].payload.Data, `{"id":6,"name":"66"}`) {
		t.Errorf("receiver got %s after a refused reconfiguration, want item 6", got[0].payload.Data)
	}
}

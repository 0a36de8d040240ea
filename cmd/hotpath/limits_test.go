package main

import (
	"strings"
	"testing"
	"time"
)

// loggedClient sends GET /plaintext with an X-Forwarded-For header and
// returns the remote_addr the access log recorded for it.
func loggedClient(t *testing.T, p *proc, id, xff string) string {
	t.Helper()
	get(t, "GET", p.app+"/plaintext", "X-Request-ID", id, "X-Forwarded-For", xff)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range accessLines(t, p.stdout.String()) {
			if l["request_id"] == id {
				addr, _ := l["remote_addr"].(string)
				return addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no access-log line for request %s:\n%s", id, p.stdout.String())
	return ""
}

// TestClientAddressFollowsTrustedProxiesOnly: X-Forwarded-For names the
// client only when the socket peer is a trusted proxy, and then only its
// right-most untrusted entry counts.
func TestClientAddressFollowsTrustedProxiesOnly(t *testing.T) {
	untrusted := startProc(t, "--log.access_sample=1")
	defer untrusted.stop(t)
	if got := loggedClient(t, untrusted, "spoof-1", "203.0.113.5"); got != "127.0.0.1" {
		t.Errorf("no trusted proxies: X-Forwarded-For 203.0.113.5 logged as %q, want the peer 127.0.0.1", got)
	}

	other := startProc(t, "--log.access_sample=1", "--server.trusted_proxies=10.0.0.0/8")
	defer other.stop(t)
	if got := loggedClient(t, other, "spoof-2", "203.0.113.5"); got != "127.0.0.1" {
		t.Errorf("peer outside server.trusted_proxies: logged %q, want the peer 127.0.0.1", got)
	}

	trusted := startProc(t, "--log.access_sample=1", "--server.trusted_proxies=127.0.0.1,10.0.0.0/8")
	defer trusted.stop(t)
	for _, c := range []struct{ xff, want string }{
		{"203.0.113.5", "203.0.113.5"},
		{"1.1.1.1, 203.0.113.5, 10.0.0.7", "203.0.113.5"},
		{"10.0.0.8", "10.0.0.8"},
		{"not-an-address", "127.0.0.1"},
	} {
		if got := loggedClient(t, trusted, "via-proxy-"+c.want+"-"+itoa(len(c.xff)), c.xff); got != c.want {
			t.Errorf("trusted peer, X-Forwarded-For %q: logged %q, want %q", c.xff, got, c.want)
		}
	}
}

func TestTrustedProxiesAreValidated(t *testing.T) {
	for _, bad := range []string{"10.0.0.1/8", "proxy.internal", "10.0.0.0/40"} {
		code, _, stderr := runExit(t, nil, "--server.trusted_proxies="+bad)
		if code != 2 || !strings.Contains(stderr, "server.trusted_proxies") {
			t.Errorf("--server.trusted_proxies=%s: exit %d, stderr %q; want 2 naming the key", bad, code, stderr)
		}
	}
}

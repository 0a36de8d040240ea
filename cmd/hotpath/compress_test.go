package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// curlGet fetches url with curl, a client whose zstd, brotli and gzip
// decoders are the reference C libraries, none of them the encoders the
// server uses. With decode it asks for coding and returns the decoded
// body; without, it returns the bytes as they came over the wire. The
// response header block comes back too.
func curlGet(t *testing.T, url, coding string, decode bool) (http.Header, []byte) {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed to decode the answers independently (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	args := []string{"-sS", "--fail-with-body", "-D", hdr, "-o", body, "-H", "Accept-Encoding: " + coding}
	if decode {
		args = append(args, "--compressed")
	}
	if out, err := exec.Command(path, append(args, url)...).CombinedOutput(); err != nil {
		t.Fatalf("curl %s (%s): %v: %s", url, coding, err, out)
	}
	raw, err := os.ReadFile(hdr)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, line := range strings.Split(string(raw), "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	b, err := os.ReadFile(body)
	if err != nil {
		t.Fatal(err)
	}
	return h, b
}

// TestCompressedAnswersDecodeToTheIdentityBody fetches the large answers
// in every coding and checks each decodes, with an independent decoder,
// to the uncompressed answer, with a Content-Length that counts the bytes
// on the wire; the small hot answers are never compressed.
func TestCompressedAnswersDecodeToTheIdentityBody(t *testing.T) {
	p := startProc(t)
	defer p.stop(t)
	db := openDirect(t, "sqlite", dbPath(t, p))
	for i := range 100 {
		if _, err := db.AddFortune(context.Background(), fmt.Sprintf("fortune number %d, added so a page holds a hundred", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/fortunes", "/api/v1/fortunes?limit=100", "/api/v1/openapi.json"} {
		url := p.app + path
		h, identity := curlGet(t, url, "identity", false)
		if h.Get("Content-Encoding") != "" || h.Get("Vary") != "Accept-Encoding" || len(identity) < 4096 {
			t.Fatalf("%s identity: Content-Encoding %q, Vary %q, %d bytes", path, h.Get("Content-Encoding"), h.Get("Vary"), len(identity))
		}
		sizes := []string{fmt.Sprintf("identity %d", len(identity))}
		for _, coding := range []string{"zstd", "br", "gzip"} {
			h, wire := curlGet(t, url, coding, false)
			if got := h.Get("Content-Encoding"); got != coding {
				t.Errorf("%s %s: Content-Encoding %q", path, coding, got)
				continue
			}
			if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(wire)) || len(wire) >= len(identity)/2 {
				t.Errorf("%s %s: Content-Length %s for %d bytes on the wire (identity %d)", path, coding, cl, len(wire), len(identity))
			}
			if h.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s %s: Vary %q", path, coding, h.Get("Vary"))
			}
			if _, decoded := curlGet(t, url, coding, true); !bytes.Equal(decoded, identity) {
				t.Errorf("%s %s: decodes to %d bytes that differ from the identity answer's %d", path, coding, len(decoded), len(identity))
			}
			sizes = append(sizes, fmt.Sprintf("%s %d", coding, len(wire)))
		}
		t.Logf("%s on the wire: %s bytes", path, strings.Join(sizes, ", "))
	}
	for _, path := range []string{"/plaintext", "/json", "/db", "/api/v1/worlds/1", "/queries?queries=1"} {
		h, _ := curlGet(t, p.app+path, "gzip, br, zstd, *", false)
		if got := h.Get("Content-Encoding"); got != "" {
			t.Errorf("%s: Content-Encoding %q, want none", path, got)
		}
	}
	// A 304 has no body to compress, and keeps the tag the client sent.
	h, _ := curlGet(t, p.app+"/api/v1/fortunes?limit=100", "br", false)
	tag := h.Get("ETag")
	resp, body := get(t, "GET", p.app+"/api/v1/fortunes?limit=100", "Accept-Encoding", "br", "If-None-Match", tag)
	if resp.StatusCode != 304 || body != "" || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("ETag") != tag {
		t.Errorf("If-None-Match %s: %d, Content-Encoding %q, ETag %q, %d bytes", tag, resp.StatusCode, resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"), len(body))
	}
}

func TestCompressionCanBeTurnedOff(t *testing.T) {
	p := startProc(t, "--server.compress=false")
	defer p.stop(t)
	h, _ := curlGet(t, p.app+"/api/v1/openapi.json", "gzip", false)
	if h.Get("Content-Encoding") != "" || h.Get("Vary") != "" {
		t.Errorf("server.compress=false: Content-Encoding %q, Vary %q; want neither", h.Get("Content-Encoding"), h.Get("Vary"))
	}
}

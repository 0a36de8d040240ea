package compress

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/zstd"
	brotli "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's Date-header ticker is process-wide and never stops.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// The worker pool's cleaner sleeps, then notices its server is gone.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// The encoders run on fasthttp's process-wide stackless workers.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"),
	)
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept   string
		want     Coding
		required bool
	}{
		{"", Identity, false},
		{"gzip", Gzip, false},
		{"GZIP", Gzip, false},
		{"x-gzip", Gzip, false},
		{"br", Br, false},
		{"zstd", Zstd, false},
		{"deflate", Identity, false},
		{"gzip, deflate, br, zstd", Zstd, false}, // equal weights: the server's order
		{"gzip, br", Br, false},
		{"gzip;q=1.0, br;q=0.5", Gzip, false},
		{"gzip;q=0.8, br;q=0.9, zstd;q=0.1", Br, false},
		{"br;q=0, gzip", Gzip, false},
		{"br;Q=0.000, gzip;q=0.001", Gzip, false},
		{"gzip;q=0", Identity, false},
		{"*", Zstd, false},
		{"*;q=0.5, gzip", Gzip, false},
		{"*;q=0.5, zstd;q=0", Br, false},
		{"*;q=0", Identity, false},                      // nothing acceptable: identity anyway
		{"identity", Identity, false},                   // only identity listed
		{"identity;q=1, gzip;q=0.5", Identity, false},   // identity preferred
		{"identity;q=0.5, gzip", Gzip, false},           // a coding preferred
		{"identity;q=0, gzip", Gzip, true},              // identity refused: compress whatever the size
		{"*;q=0, br", Br, true},                         // identity refused through *
		{"*;q=0, identity, br", Br, false},              // ... unless listed itself
		{"identity;q=0", Identity, false},               // nothing acceptable: identity anyway
		{"gzip;q=abc", Identity, false},                 // a malformed weight refuses
		{"gzip;q=1.5", Identity, false},                 // out of range
		{"gzip;q=0.1234", Identity, false},              // too many digits
		{"gzip; foo=bar; q=0.5, br;q=0.4", Gzip, false}, // other parameters are skipped
		{" , ,gzip ,", Gzip, false},
		{"gzipx, xbr", Identity, false},
	}
	for _, c := range cases {
		got, required := Negotiate([]byte(c.accept))
		if got != c.want || required != c.required {
			t.Errorf("Accept-Encoding %q: %s (required %v), want %s (required %v)", c.accept, got, required, c.want, c.required)
		}
	}
}

// page is a body well over the minimum size, of the kind hotpath sends.
var page = []byte(strings.Repeat(`{"id":12345,"message":"A computer scientist is someone who fixes things that aren't broken."},`, 40))

// serve runs h behind a Compressor on a real loopback socket.
func serve(t *testing.T, minSize int, h fasthttp.RequestHandler) (string, *vm.Set) {
	t.Helper()
	set := vm.NewSet()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: New(true, minSize, set).Wrap(h)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
		<-done
	})
	return "http://" + ln.Addr().String(), set
}

// rawClient sends Accept-Encoding exactly as given and never decodes.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func fetch(t *testing.T, method, url, accept string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept-Encoding", accept)
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rawClient.CloseIdleConnections()
	return resp, b
}

// decode undoes a content coding with a decoder of its own.
func decode(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	default:
		t.Fatalf("no decoder for %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", coding, err)
	}
	return out
}

func TestWrapCompressesWhatTheClientAccepts(t *testing.T) {
	url, set := serve(t, 1024, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("ETag", `"p1"`)
		ctx.SetBody(page)
	})
	for _, coding := range []string{"gzip", "br", "zstd"} {
		resp, body := fetch(t, "GET", url, coding)
		if got := resp.Header.Get("Content-Encoding"); got != coding {
			t.Fatalf("Accept-Encoding %s: Content-Encoding %q", coding, got)
		}
		if resp.ContentLength != int64(len(body)) || len(body) >= len(page)/2 {
			t.Errorf("%s: Content-Length %d for %d bytes on the wire (identity %d)", coding, resp.ContentLength, len(body), len(page))
		}
		if got := decode(t, coding, body); !bytes.Equal(got, page) {
			t.Errorf("%s: decoded body differs from the identity body (%d vs %d bytes)", coding, len(got), len(page))
		}
		if got := resp.Header.Get("ETag"); got != `"p1-`+coding+`"` {
			t.Errorf("%s: ETag %q, want the coding appended", coding, got)
		}
		if got := resp.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("%s: Vary %q", coding, got)
		}
	}
	resp, body := fetch(t, "GET", url, "")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, page) || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("no Accept-Encoding: %q, %d bytes, Vary %q; want identity with Vary", resp.Header.Get("Content-Encoding"), len(body), resp.Header.Get("Vary"))
	}
	var metrics bytes.Buffer
	set.WritePrometheus(&metrics)
	for _, coding := range []string{"gzip", "br", "zstd"} {
		if line := `http_compressed_responses_total{encoding="` + coding + `"} 1`; !strings.Contains(metrics.String(), line) {
			t.Errorf("metrics lack %s:\n%s", line, metrics.String())
		}
	}
}

func TestWrapLeavesAlone(t *testing.T) {
	cases := []struct {
		name   string
		method string
		accept string
		h      fasthttp.RequestHandler
	}{
		{"a small body", "GET", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(page[:1023])
		}},
		{"HEAD", "HEAD", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(page)
		}},
		{"304", "GET", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("ETag", `"p1"`)
			ctx.SetStatusCode(304)
		}},
		{"204", "GET", "gzip", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(204) }},
		{"an image", "GET", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("image/png")
			ctx.SetBody(page)
		}},
		{"an encoded body", "GET", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.Response.Header.SetContentEncoding("br")
			ctx.SetBody(page)
		}},
		{"incompressible bytes", "GET", "gzip", func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			b := make([]byte, 4096)
			_, _ = rand.NewChaCha8([32]byte{7}).Read(b) // ChaCha8.Read never fails
			ctx.SetBody(b)
		}},
	}
	for _, c := range cases {
		url, _ := serve(t, 1024, c.h)
		resp, _ := fetch(t, c.method, url, c.accept)
		want := ""
		if c.name == "an encoded body" {
			want = "br"
		}
		if got := resp.Header.Get("Content-Encoding"); got != want {
			t.Errorf("%s: Content-Encoding %q, want %q", c.name, got, want)
		}
		if c.name == "304" && resp.Header.Get("ETag") != `"p1"` {
			t.Errorf("304: ETag %q, want it untouched", resp.Header.Get("ETag"))
		}
		if c.name == "HEAD" && resp.Header.Get("Content-Length") != strconv.Itoa(len(page)) {
			t.Errorf("HEAD: Content-Length %q, want the identity length %d", resp.Header.Get("Content-Length"), len(page))
		}
	}
}

func TestWrapCompressesSmallBodiesWhenIdentityIsRefused(t *testing.T) {
	url, _ := serve(t, 1024, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(page[:300])
	})
	resp, body := fetch(t, "GET", url, "identity;q=0, gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", body), page[:300]) {
		t.Errorf("identity refused: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

func TestVaryIsMerged(t *testing.T) {
	for _, c := range []struct{ before, after string }{
		{"", "Accept-Encoding"},
		{"Origin", "Origin, Accept-Encoding"},
		{"origin, accept-encoding", "origin, accept-encoding"},
		{"*", "*"},
	} {
		var h fasthttp.ResponseHeader
		if c.before != "" {
			h.Set("Vary", c.before)
		}
		addVary(&h)
		if got := string(h.Peek("Vary")); got != c.after {
			t.Errorf("Vary %q: became %q, want %q", c.before, got, c.after)
		}
	}
}

// TestWrapAllocatesNothingWithoutAcceptEncoding: a wrapped route serving a
// client that asks for no coding pays a header and no allocation.
func TestWrapAllocatesNothingWithoutAcceptEncoding(t *testing.T) {
	h := New(true, 1024, vm.NewSet()).Wrap(func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(page)
	})
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	run := func() {
		ctx.Response.Reset()
		h(&ctx)
	}
	run()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("%v allocs per request, want 0", n)
	}
}

func BenchmarkNegotiate(b *testing.B) {
	accept := []byte("gzip, deflate, br, zstd")
	b.ReportAllocs()
	for b.Loop() {
		Negotiate(accept)
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, coding := range []string{"gzip", "br", "zstd"} {
		b.Run(coding, func(b *testing.B) {
			h := New(true, 1024, vm.NewSet()).Wrap(func(ctx *fasthttp.RequestCtx) {
				ctx.SetContentType("application/json")
				ctx.SetBody(page)
			})
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.Set("Accept-Encoding", coding)
			b.ReportAllocs()
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				ctx.Response.Reset()
				h(&ctx)
			}
		})
	}
}

// FuzzNegotiate: any Accept-Encoding gives a known coding, and "required"
// only together with a real coding.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0.5, *;q=0", "identity;q=0", "x-gzip;q=1.000, zstd;q=0.999", ";;,,q=", "*;q=0.0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		c, required := Negotiate([]byte(accept))
		if c > Gzip || (required && c == Identity) {
			t.Fatalf("Accept-Encoding %q: coding %d, required %v", accept, c, required)
		}
	})
}

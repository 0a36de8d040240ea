package ratelimit

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

func TestParseRate(t *testing.T) {
	good := map[string]Rate{
		"":          {},
		"0":         {},
		"20/m":      {20, time.Minute},
		"1/s":       {1, time.Second},
		"3600/h":    {3600, time.Hour},
		"1000000/s": {MaxN, time.Second},
	}
	for in, want := range good {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err == nil && !want.Off() && got.String() != in {
			t.Errorf("ParseRate(%q).String() = %q, want it back", in, got.String())
		}
	}
	for _, bad := range []string{"20", "20/", "/m", "20/min", "20/d", "0/m", "-1/m", "+5/m", "020/m", " 20/m", "20/m ", "1000001/s", "2.5/s", "1_000/s", "20/M", "abc"} {
		if got, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", bad, got)
		}
	}
}

func key(i int) Key {
	var k Key
	binary.BigEndian.PutUint64(k[:], uint64(i))
	return k
}

// TestBucketBurstsThenKeepsTheRate: a bucket of 20/m allows 20 at once,
// then one every 3 seconds, and says so.
func TestBucketBurstsThenKeepsTheRate(t *testing.T) {
	tb := NewTable(Rate{20, time.Minute})
	now := int64(time.Hour)
	for i := range 20 {
		d := tb.allowAt(key(1), now)
		if !d.Allowed || d.Remaining != int64(19-i) {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, 19-i)
		}
		if want := time.Duration(i+1) * 3 * time.Second; d.Full != want {
			t.Errorf("request %d: full in %s, want %s", i+1, d.Full, want)
		}
	}
	d := tb.allowAt(key(1), now)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != 3*time.Second {
		t.Fatalf("request 21: %+v, want refused, retry after 3s", d)
	}
	if d := tb.allowAt(key(2), now); !d.Allowed || d.Remaining != 19 {
		t.Errorf("another client: %+v, want its own full bucket", d)
	}
	if d := tb.allowAt(key(1), now+int64(2999*time.Millisecond)); d.Allowed {
		t.Errorf("2.999s later: %+v, want still refused", d)
	}
	if d := tb.allowAt(key(1), now+int64(3*time.Second)); !d.Allowed || d.Remaining != 0 {
		t.Errorf("3s later: %+v, want one request allowed", d)
	}
	if d := tb.allowAt(key(1), now+int64(64*time.Second)); !d.Allowed || d.Remaining != 19 {
		t.Errorf("a minute later: %+v, want a full bucket again", d)
	}
}

func TestIdleBucketsExpire(t *testing.T) {
	tb := NewTable(Rate{5, time.Second})
	for i := range 100 {
		tb.Allow(key(i))
	}
	if n := tb.Live(); n != 100 {
		t.Fatalf("%d live buckets after 100 clients, want 100", n)
	}
	time.Sleep(1100 * time.Millisecond)
	if n := tb.Live(); n != 0 {
		t.Errorf("%d live buckets a second later, want 0: a full bucket is forgotten", n)
	}
}

// TestTableStaysAtCapacity: four times as many clients as slots, each with
// a bucket that stays far from full, fill the table and evict; the table
// allocates nothing and holds no more than Capacity.
func TestTableStaysAtCapacity(t *testing.T) {
	tb := NewTable(Rate{1, time.Hour})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	evicted := 0
	for i := range 4 * Capacity {
		if d := tb.Allow(key(i)); !d.Allowed {
			t.Fatalf("client %d refused on its first request", i)
		} else if d.Evicted {
			evicted++
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("%d clients allocated %d bytes, want none", 4*Capacity, grew)
	}
	live := tb.Live()
	// Each key hashes to one set of 8 slots; with 32 keys per set on
	// average, all but a rare set is full.
	if live > Capacity || live < Capacity*99/100 {
		t.Errorf("%d live buckets, want close to and at most %d", live, Capacity)
	}
	if evicted != 4*Capacity-live {
		t.Errorf("%d evictions, want %d (every client beyond the live ones)", evicted, 4*Capacity-live)
	}
}

// TestConcurrentBurstAllowsExactlyN: 64 goroutines racing on one bucket get
// exactly its N requests between them.
func TestConcurrentBurstAllowsExactlyN(t *testing.T) {
	tb := NewTable(Rate{100, time.Hour})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 10 {
				if tb.Allow(key(7)).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 100 {
		t.Errorf("640 concurrent requests on a 100/h bucket: %d allowed, want 100", n)
	}
}

func TestAddrKey(t *testing.T) {
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
	}
	for _, p := range same {
		if AddrKey(netip.MustParseAddr(p[0])) != AddrKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s have different keys, want one", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.1", "192.0.2.2"},
		{"0.0.0.0", "::"},
	}
	for _, p := range differ {
		if AddrKey(netip.MustParseAddr(p[0])) == AddrKey(netip.MustParseAddr(p[1])) {
			t.Errorf("%s and %s share a key, want two", p[0], p[1])
		}
	}
}

func newCtx() *fasthttp.RequestCtx { return &fasthttp.RequestCtx{} }

func TestClassAnswers(t *testing.T) {
	set := vm.NewSet()
	c := NewClass("anonymous_writes", "writes without a bearer token from this address", Rate{2, time.Minute}, set)
	k := AddrKey(netip.MustParseAddr("192.0.2.1"))
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	ctx := newCtx()
	if !c.Admit(ctx, k) {
		t.Fatal("first request refused")
	}
	check("first", string(ctx.Response.Header.Peek("RateLimit-Policy")), `"anonymous_writes";q=2;w=60`)
	check("first", string(ctx.Response.Header.Peek("RateLimit")), `"anonymous_writes";r=1;t=30`)
	check("first Retry-After", string(ctx.Response.Header.Peek("Retry-After")), "")
	c.Admit(newCtx(), k)
	ctx = newCtx()
	if c.Admit(ctx, k) {
		t.Fatal("third request of a 2/m bucket allowed")
	}
	check("refused status", strconv.Itoa(ctx.Response.StatusCode()), "429")
	check("refused Retry-After", string(ctx.Response.Header.Peek("Retry-After")), "30")
	check("refused RateLimit", string(ctx.Response.Header.Peek("RateLimit")), `"anonymous_writes";r=0;t=30`)
	check("refused type", string(ctx.Response.Header.ContentType()), "application/problem+json")
	body := string(ctx.Response.Body())
	if !strings.Contains(body, `"status":429`) || !strings.Contains(body, "limits.anonymous_writes allows 2/m") {
		t.Errorf("refusal body %s does not name the limit", body)
	}
	var out strings.Builder
	set.WritePrometheus(&out)
	for _, want := range []string{
		`http_rate_limited_total{class="anonymous_writes"} 1`,
		`http_rate_limit_buckets{class="anonymous_writes"} 1`,
		`http_rate_limit_evictions_total{class="anonymous_writes"} 0`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, out.String())
		}
	}
}

func TestClassOffAndReload(t *testing.T) {
	var nilClass *Class
	if !nilClass.Admit(newCtx(), Key{}) || nilClass.On() {
		t.Error("a nil class limits")
	}
	c := NewClass("reads", "requests from this address", Rate{}, vm.NewSet())
	ctx := newCtx()
	if !c.Admit(ctx, Key{}) || c.On() || len(ctx.Response.Header.Peek("RateLimit")) != 0 {
		t.Error("an off class limits or adds headers")
	}
	c.SetRate(Rate{1, time.Hour})
	if !c.Admit(newCtx(), Key{}) || c.Admit(newCtx(), Key{}) {
		t.Error("turned on at 1/h: want the first request allowed, the second refused")
	}
	c.SetRate(Rate{})
	if !c.Admit(newCtx(), Key{}) {
		t.Error("turned off again: refused")
	}
	c.SetRate(Rate{1, time.Hour})
	if c.Admit(newCtx(), Key{}) {
		t.Error("on again: the bucket's debt was forgotten")
	}
}

func TestAdmitAllocatesNothing(t *testing.T) {
	c := NewClass("reads", "requests from this address", Rate{MaxN, time.Second}, vm.NewSet())
	ctx := newCtx()
	k := AddrKey(netip.MustParseAddr("192.0.2.1"))
	c.Admit(ctx, k)
	if n := testing.AllocsPerRun(1000, func() { c.Admit(ctx, k) }); n != 0 {
		t.Errorf("allowed: %v allocations per request, want 0", n)
	}
	refusing := NewClass("reads", "requests from this address", Rate{1, time.Hour}, vm.NewSet())
	refusing.Admit(ctx, k)
	refusing.Admit(ctx, k)
	if n := testing.AllocsPerRun(1000, func() { refusing.Admit(ctx, k) }); n != 0 {
		t.Errorf("refused: %v allocations per request, want 0", n)
	}
}

// BenchmarkAllow is one client's request decided, and many clients'
// requests decided in parallel.
func BenchmarkAllow(b *testing.B) {
	b.Run("one-client", func(b *testing.B) {
		tb := NewTable(Rate{MaxN, time.Second})
		b.ReportAllocs()
		for b.Loop() {
			tb.Allow(key(1))
		}
	})
	b.Run("parallel-clients", func(b *testing.B) {
		tb := NewTable(Rate{MaxN, time.Second})
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) << 20
			for pb.Next() {
				tb.Allow(key(i % 100_000))
				i++
			}
		})
	})
	b.Run("admit-with-headers", func(b *testing.B) {
		c := NewClass("reads", "requests from this address", Rate{MaxN, time.Second}, vm.NewSet())
		ctx := newCtx()
		k := AddrKey(netip.MustParseAddr("192.0.2.1"))
		b.ReportAllocs()
		for b.Loop() {
			c.Admit(ctx, k)
		}
	})
}

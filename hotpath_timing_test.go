package hotpath_test

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath"
	"github.com/hotpath/hotpath/internal/testenv"
)

// The typed POST: a bearer token, a JSON body decoded strictly into a type
// and validated against its tags, an item kept in a bounded in-memory
// map, 201 with Location and the item as JSON. BenchmarkTypedPOST runs it
// through the public package and the whole chain; BenchmarkBareTypedPOST
// is its twin written by hand on bare fasthttp (go-json decoding with
// unknown fields refused, the checks written out, the same answer), the
// floor the platform's typed path is measured against:
//
//	go test -run '^$' -bench TypedPOST -benchmem .

// benchItem is what both store.
type benchItem struct {
	ID   int64    `json:"id"`
	Name string   `json:"name"`
	Qty  int      `json:"qty"`
	Tags []string `json:"tags"`
}

// newBenchItem is the body, its constraints in tags.
type newBenchItem struct {
	Name string   `json:"name" minLength:"1" maxLength:"64"`
	Qty  int      `json:"qty" minimum:"1" maximum:"1000"`
	Tags []string `json:"tags" maxItems:"8" minLength:"1" maxLength:"32" required:"false"`
}

// itemStore is a bounded map, so what is measured is the framework.
type itemStore struct {
	mu    sync.Mutex
	next  atomic.Int64
	items map[int64]benchItem
}

func (s *itemStore) add(it benchItem) benchItem {
	it.ID = s.next.Add(1)
	s.mu.Lock()
	if len(s.items) >= 4096 {
		clear(s.items)
	}
	s.items[it.ID] = it
	s.mu.Unlock()
	return it
}

const benchBody = `{"name":"widget","qty":3,"tags":["red","small"]}`

func typedRequest() string {
	return "POST /v1/items HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(benchBody)) + "\r\n\r\n" + benchBody
}

func BenchmarkTypedPOST(b *testing.B) {
	s := &itemStore{items: map[int64]benchItem{}}
	app := hotpath.New("bench", hotpath.Output(io.Discard, io.Discard))
	hotpath.POST(app, "/v1/items", func(c *hotpath.Ctx, in *newBenchItem) (hotpath.Created[benchItem], error) {
		it := s.add(benchItem{Name: in.Name, Qty: in.Qty, Tags: in.Tags})
		return hotpath.Created[benchItem]{Location: "/v1/items/" + strconv.FormatInt(it.ID, 10), Body: it}, nil
	}, hotpath.Auth())
	started(b, app, "--log.access_sample=0")
	serveBench(b, app.ServeConn, typedRequest())
}

func BenchmarkBareTypedPOST(b *testing.B) {
	s := &itemStore{items: map[int64]benchItem{}}
	want := []byte("Bearer " + token)
	srv := &fasthttp.Server{Name: "bare", Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/v1/items" || !ctx.IsPost() {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
		if !bytes.Equal(ctx.Request.Header.Peek("Authorization"), want) {
			ctx.Error("unauthorized", fasthttp.StatusUnauthorized)
			return
		}
		if string(ctx.Request.Header.ContentType()) != "application/json" {
			ctx.Error("unsupported media type", fasthttp.StatusUnsupportedMediaType)
			return
		}
		var in newBenchItem
		dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			ctx.Error("bad request", fasthttp.StatusBadRequest)
			return
		}
		if n := utf8.RuneCountInString(in.Name); n < 1 || n > 64 || in.Qty < 1 || in.Qty > 1000 || len(in.Tags) > 8 {
			ctx.Error("unprocessable", fasthttp.StatusUnprocessableEntity)
			return
		}
		for _, tag := range in.Tags {
			if n := utf8.RuneCountInString(tag); n < 1 || n > 32 {
				ctx.Error("unprocessable", fasthttp.StatusUnprocessableEntity)
				return
			}
		}
		it := s.add(benchItem{Name: in.Name, Qty: in.Qty, Tags: in.Tags})
		out, err := json.Marshal(&it)
		if err != nil {
			panic(err)
		}
		ctx.Response.Header.Set("Location", "/v1/items/"+strconv.FormatInt(it.ID, 10))
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetContentType("application/json")
		ctx.SetBody(out)
	}}
	serveBench(b, srv.ServeConn, typedRequest())
}

// serveBench sends req over an in-memory connection on every iteration
// and checks the answers are 201s.
func serveBench(b *testing.B, serve func(net.Conn) error, req string) {
	conn := &testenv.MemConn{}
	check := func() {
		if !bytes.HasPrefix(conn.Out.Bytes(), []byte("HTTP/1.1 201")) {
			b.Fatalf("answer: %q", conn.Out.Bytes())
		}
	}
	conn.In.WriteString(req)
	if err := serve(conn); err != nil {
		b.Fatal(err)
	}
	check()
	conn.Out.Reset()
	b.ReportAllocs()
	for b.Loop() {
		conn.In.WriteString(req)
		if err := serve(conn); err != nil {
			b.Fatal(err)
		}
		conn.Out.Reset()
	}
	conn.In.WriteString(req)
	_ = serve(conn)
	check()
}

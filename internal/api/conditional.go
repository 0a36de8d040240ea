package api

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/etag"
	"github.com/hotpath/hotpath/internal/problem"
	"github.com/hotpath/hotpath/internal/store"
)

// Entity tags come from stored state, never from hashing a body per
// request:
//
//   - a World is "w<randomNumber>": its one mutable value is its version
//     (a value written back after a change gives the same tag, and the same
//     bytes, as a strong tag must);
//   - a Fortune is "f<id>": fortunes never change once created, and ids are
//     never handed out twice (AUTOINCREMENT on SQLite, an identity column on
//     PostgreSQL), so the id names one message forever;
//   - a page of the list is "p<hash>": FNV-1a over the ids on it and whether
//     a next page exists, which is all its bytes depend on.

// Cache-Control values: resource reads may be stored but must be
// revalidated with their ETag; write answers and problems are not stored.
const (
	cacheRevalidate = "no-cache"
	cacheNever      = "no-store"
)

func worldTag(dst []byte, w store.World) []byte {
	dst = append(dst, `"w`...)
	dst = strconv.AppendInt(dst, int64(w.RandomNumber), 10)
	return append(dst, '"')
}

func fortuneTag(dst []byte, id int32) []byte {
	dst = append(dst, `"f`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	return append(dst, '"')
}

func pageTag(dst []byte, items []store.Fortune, more bool) []byte {
	h := fnv.New64a()
	var b [4]byte
	for _, f := range items {
		binary.LittleEndian.PutUint32(b[:], uint32(f.ID))
		h.Write(b[:])
	}
	if more {
		h.Write([]byte{1})
	}
	dst = append(dst, `"p`...)
	dst = strconv.AppendUint(dst, h.Sum64(), 36)
	return append(dst, '"')
}

// notModified answers a GET or HEAD whose If-None-Match names the current
// tag with 304 and reports true; otherwise it sets the read headers (ETag,
// Cache-Control) for the full answer and reports false.
func notModified(ctx *fasthttp.RequestCtx, tag []byte) bool {
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, cacheRevalidate)
	if held, ok := etag.NoneMatch(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), tag); ok {
		h.SetBytesV(fasthttp.HeaderETag, held)
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return true
	}
	h.SetBytesV(fasthttp.HeaderETag, tag)
	return false
}

// condition is a write's If-Match header, read before the write.
type condition struct {
	header []byte // as sent; empty when absent
	any    bool   // If-Match: *
}

func ifMatch(ctx *fasthttp.RequestCtx) condition {
	h := ctx.Request.Header.Peek(fasthttp.HeaderIfMatch)
	return condition{header: h, any: etag.Any(h)}
}

func (c condition) present() bool { return len(c.header) > 0 }

// worldNumbers lists the randomNumbers the World tags of a non-wildcard
// If-Match stand for; a list that names none gives an empty, non-nil slice,
// which matches no World. Weak tags never match a write (strong comparison).
func (c condition) worldNumbers() []int32 {
	out := []int32{}
	etag.Each(c.header, func(opaque []byte, weak bool) bool {
		if weak || len(opaque) < 2 || opaque[0] != 'w' || !digits(string(opaque[1:])) {
			return true
		}
		if n, err := strconv.ParseInt(string(opaque[1:]), 10, 32); err == nil {
			out = append(out, int32(n))
		}
		return true
	})
	return out
}

var errPrecondition = &problem.Error{Status: fasthttp.StatusPreconditionFailed,
	Detail: "If-Match names no current version of this resource (changed or gone since it was read): read it again for its ETag and retry"}

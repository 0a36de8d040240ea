// Command gnet is the event-loop ceiling for Go: a gnet/v2 engine with a
// hand-written HTTP/1.1 codec that serves only /plaintext and /json. It shows
// how fast a Go server can answer when it skips a general HTTP stack.
package main

import (
	"bytes"
	"context"
	"flag"
	"log"
	"net/http"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goccy/go-json"
	"github.com/panjf2000/gnet/v2"
)

type server struct {
	gnet.BuiltinEventEngine
	// date holds the current "Date: ...\r\n" line, refreshed every second so
	// the hot path never formats a time.
	date atomic.Pointer[[]byte]
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	// -driver, -dsn, -pool and -metrics-addr are accepted so the runner can start every peer
	// the same way; this peer has no database endpoints.
	flag.String("driver", "", "ignored")
	flag.String("dsn", "", "ignored")
	flag.Int("pool", 0, "ignored")
	flag.String("metrics-addr", "", "ignored")
	flag.Parse()

	s := &server{}
	s.refreshDate()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				if err := gnet.Stop(context.Background(), "tcp://"+*addr); err != nil {
					log.Printf("stop: %v", err)
				}
				return
			case <-tick.C:
				s.refreshDate()
			}
		}
	}()
	if err := gnet.Run(s, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithReusePort(false)); err != nil {
		log.Fatalf("serve %s: %v", *addr, err)
	}
}

func (s *server) refreshDate() {
	line := []byte("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	s.date.Store(&line)
}

var headerEnd = []byte("\r\n\r\n")

// OnTraffic answers every complete request in the buffer (clients may
// pipeline) with one write, and leaves a partial request for the next call.
func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1) // Peek(-1) returns what is buffered and no error
	var out []byte
	consumed := 0
	for {
		end := bytes.Index(buf[consumed:], headerEnd)
		if end < 0 {
			break
		}
		req := buf[consumed : consumed+end+len(headerEnd)]
		n := len(req) + contentLength(req)
		if consumed+n > len(buf) {
			break // the body has not arrived yet
		}
		consumed += n
		out = s.appendResponse(out, req)
	}
	if consumed > 0 {
		c.Discard(consumed) // cannot fail for bytes Peek returned
	}
	if len(out) > 0 {
		if _, err := c.Write(out); err != nil {
			return gnet.Close
		}
	}
	return gnet.None
}

func (s *server) appendResponse(dst, req []byte) []byte {
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	method, rest, _ := bytes.Cut(line, []byte(" "))
	path, _, _ := bytes.Cut(rest, []byte(" "))
	path, _, _ = bytes.Cut(path, []byte("?"))
	switch {
	case string(method) != "GET":
		return s.appendHead(dst, "405 Method Not Allowed", "text/plain", 0)
	case string(path) == "/plaintext":
		dst = s.appendHead(dst, "200 OK", "text/plain", len("Hello, World!"))
		return append(dst, "Hello, World!"...)
	case string(path) == "/json":
		body, err := json.Marshal(struct {
			Message string `json:"message"`
		}{"Hello, World!"})
		if err != nil { // a fixed struct of one string always encodes
			panic(err)
		}
		dst = s.appendHead(dst, "200 OK", "application/json", len(body))
		return append(dst, body...)
	}
	return s.appendHead(dst, "404 Not Found", "text/plain", 0)
}

func (s *server) appendHead(dst []byte, status, contentType string, length int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = append(dst, status...)
	dst = append(dst, "\r\nServer: gnet\r\nContent-Type: "...)
	dst = append(dst, contentType...)
	dst = append(dst, "\r\n"...)
	dst = append(dst, *s.date.Load()...)
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, int64(length), 10)
	return append(dst, "\r\n\r\n"...)
}

// contentLength returns the request's Content-Length, or 0; bodies are read
// past but never used.
func contentLength(head []byte) int {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Content-Length")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

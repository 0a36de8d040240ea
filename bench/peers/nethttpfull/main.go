// Command nethttpfull is the standard-library peer built the way a net/http
// service is usually built, doing hotpath's job on the benchmark routes:
// http.ServeMux patterns, plain middleware functions (request id, nosniff,
// panic recovery, a log/slog JSON access-log line per request to stdout),
// prometheus/client_golang's promhttp instrumentation of every route by its
// pattern and status (/metrics on a second listener), and hotpath's read,
// write and idle timeouts.
package main

import (
	"crypto/rand"
	"encoding/json"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

type handler struct{ db *tfb.DB }

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests answered, by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "Time to answer HTTP requests, by route pattern and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
)

func main() {
	tfb.RunFullPeer(func(db *tfb.DB, f tfb.PeerFlags) (func() error, func()) {
		access := slog.New(slog.NewJSONHandler(f.AccessLog(), nil))
		return tfb.ServeWithMetrics(f, requestID(accessLog(access, secureHeaders(routes(&handler{db: db}, f)))))
	})
}

func routes(h *handler, f tfb.PeerFlags) *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, fn http.HandlerFunc) {
		route := prometheus.Labels{"route": pattern}
		mux.Handle(pattern, promhttp.InstrumentHandlerDuration(duration.MustCurryWith(route),
			promhttp.InstrumentHandlerCounter(requests.MustCurryWith(route), recoverPanics(fn))))
	}
	handle("GET /plaintext", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!")) // a write error means the client left
	})
	handle("GET /json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"message": "Hello, World!"})
	})
	handle("GET /db", func(w http.ResponseWriter, r *http.Request) {
		world, err := h.db.World(r.Context(), tfb.RandomID())
		result(w, world, err)
	})
	handle("GET /queries", func(w http.ResponseWriter, r *http.Request) {
		worlds, err := h.db.Worlds(r.Context(), tfb.Count(r.URL.Query().Get("queries")))
		result(w, worlds, err)
	})
	handle("GET /updates", func(w http.ResponseWriter, r *http.Request) {
		worlds, err := h.db.Update(r.Context(), tfb.Count(r.URL.Query().Get("queries")))
		result(w, worlds, err)
	})
	handle("GET /fortunes", func(w http.ResponseWriter, r *http.Request) {
		fortunes, err := h.db.Fortunes(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := tfb.FortunesTemplate.Execute(w, tfb.AddAndSort(fortunes)); err != nil {
			log.Printf("render fortunes: %v", err)
		}
	})
	handle("GET /api/v1/fortunes", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, after, err := tfb.ParsePage(q.Get("limit"), q.Get("after"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		rows, err := h.db.FortunesAfter(r.Context(), after, limit+1)
		result(w, tfb.NewPage(rows, limit), err)
	})
	if f.TestRoutes {
		handle("GET /panic", func(http.ResponseWriter, *http.Request) { panic("test route") })
	}
	return mux
}

// requestID keeps a caller's X-Request-Id or makes one, puts it on the
// answer and on the request, where the access log finds it.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" {
			id = rand.Text()
			r.Header.Set("X-Request-Id", id)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r)
	})
}

// secureHeaders sends nosniff, and the Server header net/http does not.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Server", "nethttp")
		next.ServeHTTP(w, r)
	})
}

// recoverPanics answers 500 for a handler that panicked and logs why; it
// sits inside the instrumentation, so the 500 is counted.
func recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Printf("panic serving %s: %v", r.URL.Path, v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status and size of an answer for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// accessLog writes one JSON line per request with the fields of hotpath's
// access log.
func accessLog(l *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		ip, _, _ := net.SplitHostPort(r.RemoteAddr) // an address without a port is logged empty
		l.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", r.Header.Get("X-Request-Id")),
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.String("path", r.URL.RequestURI()),
			slog.Int("status", sw.status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int64("bytes_in", r.ContentLength),
			slog.Int("bytes_out", sw.bytes),
			slog.String("remote_addr", ip),
			slog.String("user_agent", r.UserAgent()),
		)
	})
}

func result(w http.ResponseWriter, v any, err error) {
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("encode json: %v", err)
	}
}

func fail(w http.ResponseWriter, err error) {
	log.Print(err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

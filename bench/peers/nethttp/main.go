// Command nethttp is the standard-library peer: http.ServeMux, encoding/json
// and html/template, pgx for the database.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"time"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

type handler struct{ db *tfb.DB }

func main() {
	tfb.RunPeer(func(db *tfb.DB, addr string) (func() error, func()) {
		srv := &http.Server{Addr: addr, Handler: withServerHeader(routes(&handler{db: db})), ReadHeaderTimeout: 5 * time.Second}
		return srv.ListenAndServe, func() {
			srv.Shutdown(context.Background()) // idle connections close at once; nothing to report
		}
	})
}

func routes(h *handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plaintext", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!")) // a write error means the client left
	})
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"message": "Hello, World!"})
	})
	mux.HandleFunc("GET /db", func(w http.ResponseWriter, r *http.Request) {
		world, err := h.db.World(r.Context(), tfb.RandomID())
		result(w, world, err)
	})
	mux.HandleFunc("GET /queries", func(w http.ResponseWriter, r *http.Request) {
		worlds, err := h.db.Worlds(r.Context(), tfb.Count(r.URL.Query().Get("queries")))
		result(w, worlds, err)
	})
	mux.HandleFunc("GET /updates", func(w http.ResponseWriter, r *http.Request) {
		worlds, err := h.db.Update(r.Context(), tfb.Count(r.URL.Query().Get("queries")))
		result(w, worlds, err)
	})
	mux.HandleFunc("GET /fortunes", h.fortunes)
	return mux
}

// withServerHeader adds the Server header that net/http, unlike fasthttp,
// does not send by itself.
func withServerHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nethttp")
		next.ServeHTTP(w, r)
	})
}

func (h *handler) fortunes(w http.ResponseWriter, r *http.Request) {
	fortunes, err := h.db.Fortunes(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := tfb.FortunesTemplate.Execute(w, tfb.AddAndSort(fortunes)); err != nil {
		log.Printf("render fortunes: %v", err)
	}
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

package tfb

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os/signal"
	"syscall"
	"time"
)

// PeerFlags is the command line every peer accepts, so the bench runner can
// start any of them the same way.
type PeerFlags struct {
	Addr   string
	Driver string
	DSN    string
	Pool   int
	// MetricsAddr, LogDiscard and TestRoutes concern only the full-featured
	// peers: where they serve /metrics, whether their access log goes to
	// a discarded writer instead of stdout, and whether they add the routes
	// their tests need (GET /panic).
	MetricsAddr string
	LogDiscard  bool
	TestRoutes  bool
}

// ParsePeerFlags parses os.Args into PeerFlags.
func ParsePeerFlags() PeerFlags {
	var f PeerFlags
	flag.StringVar(&f.Addr, "addr", "127.0.0.1:8080", "listen address")
	flag.StringVar(&f.Driver, "driver", "postgres", "database driver: postgres or sqlite")
	flag.StringVar(&f.DSN, "dsn", "postgres://postgres@127.0.0.1:5432/hotpath_bench?sslmode=disable", "postgres:// URL or SQLite file path")
	flag.IntVar(&f.Pool, "pool", 8, "maximum database connections")
	flag.StringVar(&f.MetricsAddr, "metrics-addr", "127.0.0.1:9090", "full-featured peers: listen address of /metrics")
	flag.BoolVar(&f.LogDiscard, "log-discard", false, "full-featured peers: write the access log to a discarded writer instead of stdout")
	flag.BoolVar(&f.TestRoutes, "test-routes", false, "full-featured peers: add GET /panic, which panics")
	flag.Parse()
	return f
}

// OpenDB opens the database named by the flags and makes sure its tables
// exist and hold the standard rows.
func (f PeerFlags) OpenDB() (*DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, f.Driver, f.DSN, f.Pool)
	if err != nil {
		return nil, err
	}
	if err := db.Seed(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// RunPeer is a database peer's whole life: parse the flags, open the
// database, let build make the server for addr, serve until SIGINT or
// SIGTERM, then stop it. serve blocks until the server stops; after stop it
// returns nil or http.ErrServerClosed.
func RunPeer(build func(db *DB, addr string) (serve func() error, stop func())) {
	RunFullPeer(func(db *DB, f PeerFlags) (func() error, func()) { return build(db, f.Addr) })
}

// RunFullPeer is RunPeer for a peer that needs every flag.
func RunFullPeer(build func(db *DB, f PeerFlags) (serve func() error, stop func())) {
	flags := ParsePeerFlags()
	db, err := flags.OpenDB()
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	serve, stop := build(db, flags)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve %s: %v", flags.Addr, err)
	}
}

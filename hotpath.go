// Package hotpath builds HTTP API services on fasthttp with everything a
// production service needs already in place: a typed handler per endpoint,
// validated input, RFC 9457 problems, bearer-token auth, rate limits,
// Idempotency-Key, ETags, compression, an OpenAPI 3.1 document generated
// from the code, SQLite or PostgreSQL with migrations and transactions whose
// webhook events commit with them, strict layered configuration with live
// reload, Prometheus metrics, tracing, health and readiness on an admin
// port, and a graceful drain.
//
// A service is an App with its routes, each one typed handler and one
// registration line that says what the route requires:
//
//	app := hotpath.New("notes")
//	app.Migrations("notes", migrations)
//	hotpath.POST(app, "/v1/notes", s.create, hotpath.Auth(), hotpath.Idempotent())
//	hotpath.GET(app, "/v1/notes/{id}", s.get, hotpath.ETag(noteTag))
//	app.OpenAPI("/v1/openapi.json")
//	os.Exit(app.Main())
//
// Every route gets, with no line of its own, a request id, metrics by route
// template, the sampled access log, tracing, the in-flight cap, read limits
// and the drain. What can be forgotten is on; what is dangerous must be
// declared: a route that changes something (POST, PUT, PATCH, DELETE) with
// neither Auth nor Public does not start.
//
// # Compatibility
//
// hotpath follows semantic versioning from v1.0.0: within a major version,
// the exported API of this package, the configuration keys and their
// defaults' meaning, the environment and flag forms, the error body, the
// metric names and labels, the admin paths and the migration table keep
// working. Not covered: anything under internal/, the exact wording of
// problem details and log messages, the generated OpenAPI document's layout
// (its meaning is covered), performance figures, and the reference service
// in cmd/hotpath. Before v1.0.0, minor versions may break the API; the
// CHANGELOG says how.
package hotpath

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"regexp"
	"sync/atomic"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/endpoint"
	"github.com/hotpath/hotpath/internal/metrics"
	"github.com/hotpath/hotpath/internal/process"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/upstream"
)

// App is one service: its routes, configuration sections, migrations and
// metrics, declared before it starts, and the process that runs them.
// Declare everything before Main (or Start); an App runs once.
type App struct {
	name        string
	version     string
	title, desc string
	stdout      io.Writer
	stderr      io.Writer

	metrics    *metrics.Registry
	routes     []*route
	errs       []error
	sections   []config.Section
	settings   []setting
	components []store.Component
	docs       []string
	starts     []func(context.Context) error
	stops      []func()
	checks     []readiness

	db     *DB
	log    *logSwitch
	proc   *process.Process
	doc    []byte // the OpenAPI document, built at start
	docTag []byte
	// upstreams are the clients of the [upstreams.NAME] tables.
	upstreams map[string]*upstream.Client
}

// Option configures an App.
type Option func(*App)

// Version is the service's version: printed by -version, exported as
// build info and in the OpenAPI document. Default "dev".
func Version(v string) Option { return func(a *App) { a.version = v } }

// Info sets the title and description of the service's OpenAPI document
// (default title: the service's name).
func Info(title, description string) Option {
	return func(a *App) { a.title, a.desc = title, description }
}

// Output sends the access log (JSON lines) to stdout and the application
// log (JSON lines) and start-up messages to stderr; default os.Stdout and
// os.Stderr.
func Output(stdout, stderr io.Writer) Option {
	return func(a *App) { a.stdout, a.stderr = stdout, stderr }
}

// validName is a service name: it becomes the environment prefix
// (NOTES_SERVER__ADDR) and the program name in messages.
var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// New returns the App of the service called name: lower-case letters,
// digits and '-', starting with a letter. The name is the program name in
// messages and the prefix of its environment variables: a service "notes"
// reads NOTES_SERVER__ADDR; "my-api" reads MY_API_SERVER__ADDR.
func New(name string, opts ...Option) *App {
	a := &App{name: name, version: "dev", stdout: os.Stdout, stderr: os.Stderr}
	if !validName.MatchString(name) {
		a.errs = append(a.errs, fmt.Errorf("hotpath.New(%q): a service name is 1..63 of a-z, 0-9 and '-', starting with a letter", name))
	}
	for _, o := range opts {
		o(a)
	}
	if a.title == "" {
		a.title = name
	}
	a.metrics = metrics.New(a.version)
	a.db = &DB{app: a}
	a.log = newLogSwitch(a.stderr)
	return a
}

// Migrations adds the SQL migrations of one component of the service:
// fsys holds sqlite/NNNN_name.sql and postgres/NNNN_name.sql, applied in
// version order at start, each once, recorded as (component, version).
// Components apply in the order they were added, after hotpath's own.
func (a *App) Migrations(component string, fsys fs.FS) {
	a.components = append(a.components, store.Component{Name: component, FS: fsys})
}

// OnStart adds a function run at start, once the database is open and
// before the listeners accept requests, in the order added. An error stops
// the start.
func (a *App) OnStart(f func(ctx context.Context) error) { a.starts = append(a.starts, f) }

// OnStop adds a function run at stop, after the listeners have stopped and
// before the database closes, last added first.
func (a *App) OnStop(f func()) { a.stops = append(a.stops, f) }

// readiness is one check of /readyz.
type readiness struct {
	name  string
	check func(ctx context.Context) error
}

// Ready adds a readiness check: /readyz on the admin listener answers 503
// while check fails (besides the database and the drain, checked always).
func (a *App) Ready(name string, check func(ctx context.Context) error) {
	a.checks = append(a.checks, readiness{name, check})
}

// Log is the application log (JSON lines on stderr); before start its
// lines go to stderr at the info level.
func (a *App) Log() *slog.Logger { return a.log.logger }

// Main runs the service with the process's arguments and environment and
// returns the exit status: 0 after a clean drain, 1 on a runtime failure,
// 2 on a configuration mistake or a route that cannot be served safely
// (one line on stderr names it). Use it as os.Exit(app.Main()).
func (a *App) Main() int { return a.Run(os.Args[1:], os.Environ()) }

// Run is Main with explicit arguments and environment.
func (a *App) Run(args, environ []string) int {
	if err := a.check(); err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", a.name, err)
		return 2
	}
	return process.Run(a.program(), args, environ, a.stdout, a.stderr)
}

// Start starts the service inside the calling program (tests, benchmarks,
// tools), with args as on the command line and the process's environment,
// without signal handling: Stop ends it. With --server.addr=127.0.0.1:0
// and --admin.addr=127.0.0.1:0 it listens on free ports (Addr, AdminAddr).
func (a *App) Start(args ...string) error {
	if a.proc != nil {
		return errors.New("hotpath: the app is already started")
	}
	if err := a.check(); err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", a.name, err)
		return err
	}
	p, err := process.Start(a.program(), args, os.Environ(), a.stdout, a.stderr)
	if err != nil {
		return err
	}
	a.proc = p
	return nil
}

// Stop stops a service started with Start: the listeners stop taking
// requests, those in flight get until ctx ends, then everything stops.
func (a *App) Stop(ctx context.Context) error {
	if a.proc == nil {
		return errors.New("hotpath: the app is not started")
	}
	return a.proc.Stop(ctx)
}

// Addr is the application listener's address, once started.
func (a *App) Addr() string { return a.proc.Addr().String() }

// AdminAddr is the admin listener's address, once started.
func (a *App) AdminAddr() string { return a.proc.AdminAddr().String() }

// ServeConn serves the requests of one connection through the whole chain
// and the routes, as the listener would, and returns when c has no more:
// for in-process tests and benchmarks of a started App.
func (a *App) ServeConn(c net.Conn) error { return a.proc.ServeConn(c) }

// check reports the first mistake in the service's definition.
func (a *App) check() error {
	if len(a.errs) > 0 {
		return a.errs[0]
	}
	for _, r := range a.routes {
		if err := r.spec.Check(); err != nil {
			return err
		}
	}
	return nil
}

// program describes the App to the process that runs it.
func (a *App) program() process.Program {
	return process.Program{
		Name:       a.name,
		Version:    a.version,
		Sections:   a.sections,
		Components: a.components,
		Metrics:    a.metrics,
		Mount:      a.mount,
	}
}

// mount runs once the collaborators are ready: it binds the service to
// them (database, sections, log), registers every route with its
// requirements resolved, builds the OpenAPI document and runs OnStart.
func (a *App) mount(rt *process.Runtime) error {
	a.db.s, a.upstreams = rt.Store, rt.Upstreams
	a.log.set(rt.Log.Handler())
	for _, s := range a.settings {
		if err := s.load(rt.Config); err != nil {
			return err
		}
		if p, ok := s.part(); ok {
			rt.OnReload(p)
		}
	}
	for _, r := range a.routes {
		h := r.build(endpoint.Bind(&r.spec.Spec, rt.Deps))
		for _, m := range r.methods() {
			rt.Router.Handle(m, r.spec.Path, h)
		}
	}
	doc, err := a.document()
	if err != nil {
		return &process.ExitError{Code: 2, Err: fmt.Errorf("build the OpenAPI document: %w", err)}
	}
	a.doc, a.docTag = doc, documentTag(doc)
	for _, c := range a.checks {
		rt.Ready(c.name, c.check)
	}
	ctx := context.Background()
	for _, start := range a.starts {
		if err := start(ctx); err != nil {
			return err
		}
	}
	// Only once everything started: a failed start ends the process.
	for _, stop := range a.stops {
		rt.OnStop(stop)
	}
	return nil
}

// logSwitch is the App's logger: it writes to stderr until the process's
// logger exists, then through it.
type logSwitch struct {
	logger *slog.Logger
	to     atomic.Pointer[slog.Handler]
}

func newLogSwitch(stderr io.Writer) *logSwitch {
	l := &logSwitch{}
	var h slog.Handler = slog.NewJSONHandler(stderr, nil)
	l.to.Store(&h)
	l.logger = slog.New(switchHandler{l})
	return l
}

func (l *logSwitch) set(h slog.Handler) { l.to.Store(&h) }

// switchHandler hands every record to the logSwitch's current handler.
type switchHandler struct{ l *logSwitch }

func (s switchHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return (*s.l.to.Load()).Enabled(ctx, level)
}

func (s switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return (*s.l.to.Load()).Handle(ctx, r)
}

func (s switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return (*s.l.to.Load()).WithAttrs(attrs)
}

func (s switchHandler) WithGroup(name string) slog.Handler { return (*s.l.to.Load()).WithGroup(name) }

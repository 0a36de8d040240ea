// Command bench compares hotpath with peer servers under the same load and
// writes a report. Its parts (-parts) are closed-loop throughput with wrk
// (the default), latency at given rates with vegeta (open loop), cost-growth
// curves, what hotpath's response compression buys and costs, and an
// open-loop capacity search (-capacity).
//
//	go run ./cmd/bench -servers hotpath,fasthttp -endpoints json,db -duration 10s
//	go run ./cmd/bench -parts throughput,latency,curves,compression
//	go run ./cmd/bench -capacity -servers hotpath -endpoint json -p99 10ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hotpath/hotpath/bench/internal/report"
	"github.com/hotpath/hotpath/bench/internal/tfb"
	"github.com/hotpath/hotpath/bench/wrk"
)

// options are the command-line flags.
type options struct {
	servers     []string
	endpoints   []string
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	rounds      int
	pipeline    int
	queries     int
	driver      string
	dsn         string
	hotpath     string
	config      string
	binDir      string
	out         string
	install     bool
	dropDB      bool

	capacity  bool
	endpoint  string
	p99       time.Duration
	step      time.Duration
	startRate int
	maxRate   int

	parts            []string
	note             string
	latencyServers   []string
	latencyEndpoints []string
	latencyStep      time.Duration
	latencyProbe     time.Duration
	latencyRates     []int
	reference        string
	curveServers     []string
	curveEndpoint    string
	curveDuration    time.Duration
	curveConnections []int
	curveQueries     []int
	curveSizes       []int
	curveIdle        []int
	fileLimit        uint64 // the open-file limit the runner got
}

// The parts a run can make, in the order they run.
var partNames = []string{"throughput", "latency", "curves", "compression", "capacity"}

func (o options) has(part string) bool { return slices.Contains(o.parts, part) }

// started lists every server a run needs: the union of its parts' servers,
// in the order first named.
func (o options) started() []string {
	var names []string
	addAll := func(list []string) {
		for _, n := range list {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if o.has("throughput") || o.has("capacity") {
		addAll(o.servers)
	}
	if o.has("latency") {
		addAll(o.latencyServers)
	}
	if o.has("curves") {
		addAll(o.curveServers)
	}
	if o.has("compression") {
		addAll([]string{"hotpath"}) // its feature: no peer compresses
	}
	return names
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cpus := "" // servers' CPUs
	loadCPUs := ""
	pinning := "none: fewer than 2 CPUs, so servers and load generator share them (figures not comparable with pinned runs)"
	if runtime.NumCPU() >= 2 {
		cpus, loadCPUs = "0", "1"
		pinning = "servers on CPU 0 (GOMAXPROCS=1), load generator on CPU 1 (taskset)"
	}
	if o.has("throughput") || o.has("latency") || o.has("curves") || o.has("compression") {
		if err := ensureWrk(o.install); err != nil {
			return err
		}
	}
	if o.has("curves") && len(o.curveIdle) > 0 {
		// The runner and the servers, which inherit the limit, hold one
		// descriptor per idle connection each.
		if o.fileLimit, err = raiseFileLimit(uint64(slices.Max(o.curveIdle)) + 16384); err != nil {
			return err
		}
	}
	names := o.started()

	work, err := os.MkdirTemp("", "hotpath-bench")
	if err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	defer os.RemoveAll(work)
	l := launch{hotpath: o.hotpath, config: o.config, binDir: o.binDir, driver: o.driver, dsn: o.dsn, cpus: cpus, logDir: work}
	if l.binDir == "" {
		l.binDir = filepath.Join(work, "bin")
		if err := buildPeers(ctx, names, l.binDir); err != nil {
			return err
		}
	}
	if l.hotpath == "" && slices.ContainsFunc(names, isHotpath) {
		l.hotpath = filepath.Join(work, "bin", "hotpath")
		if err := buildHotpath(ctx, l.hotpath); err != nil {
			return err
		}
	}
	created, err := prepareDB(ctx, &l, work)
	if created && o.dropDB {
		// Deferred before the servers' stop, so it runs after it.
		defer func() {
			if err := dropDatabase(l.dsn); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}
	if err != nil {
		return err
	}
	if slices.Contains(names, hotpathTraced) {
		sink, err := startOTLPSink()
		if err != nil {
			return err
		}
		defer sink.stop()
		l.otlp = sink.url
	}

	servers, err := startAll(ctx, l, names)
	defer func() {
		for _, s := range servers {
			if err := s.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}
	}()
	if err != nil {
		return err
	}

	results, err := report.Load(o.out)
	if err != nil {
		return err
	}
	results.Env = environment(pinning)
	results.Env.Note = o.note
	command := "bench " + strings.Join(os.Args[1:], " ")
	var problems []string
	if o.has("throughput") {
		results.Throughput, problems = throughput(ctx, o, pick(servers, o.servers), loadCPUs, command)
		results.Throughput.Env = results.Env
	}
	// The open-loop parts generate load from this process.
	if err := pinSelf(loadCPUs); err != nil {
		return err
	}
	if o.has("latency") && ctx.Err() == nil {
		var more []string
		results.Latency, more = latencyAtRate(ctx, o, servers, results.Throughput, loadCPUs, command)
		results.Latency.Env = results.Env
		problems = append(problems, more...)
	}
	if o.has("curves") && ctx.Err() == nil {
		var more []string
		results.Curves, more = curves(ctx, o, l, servers, loadCPUs, command)
		results.Curves.Env = results.Env
		problems = append(problems, more...)
	}
	if hp := pick(servers, []string{"hotpath"}); o.has("compression") && len(hp) == 1 && ctx.Err() == nil {
		var more []string
		results.Compression, more = compression(ctx, o, hp[0], loadCPUs, command)
		results.Compression.Env = results.Env
		problems = append(problems, more...)
	}
	if o.has("capacity") && ctx.Err() == nil {
		results.Capacity = capacitySearch(ctx, o, pick(servers, o.servers), command)
		results.Capacity.Env = results.Env
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if err := report.Write(o.out, results); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(o.out, "report.md")); err != nil {
		problems = append(problems, fmt.Sprintf("report missing: %v", err))
	}
	fmt.Printf("report: %s\n", filepath.Join(o.out, "report.md"))
	if len(problems) > 0 {
		for _, s := range servers {
			fmt.Fprintf(os.Stderr, "--- %s output (last lines)\n%s\n", s.name, s.logTail())
		}
		return fmt.Errorf("%d problem(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

func parseFlags() (options, error) {
	var o options
	var servers, endpoints, parts, latencyServers, latencyEndpoints, curveServers string
	var curveConnections, curveQueries, curveSizes, curveIdle, latencyRates string
	mod := moduleDir()
	host, _ := os.Hostname() // an unnamed host only changes the folder name
	flag.StringVar(&servers, "servers", "hotpath,"+strings.Join(peerNames, ","), "comma-separated servers: hotpath and peers under bench/peers")
	flag.StringVar(&endpoints, "endpoints", "plaintext,plaintext-single,json,db,queries,fortunes,updates", "comma-separated endpoints (also cached-queries, hotpath only); plaintext is pipelined, plaintext-single is not")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured wrk run (throughput and compression parts)")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured wrk run before a server's first measured run on an endpoint (compression: on a page in a coding); 0 skips it")
	flag.IntVar(&o.connections, "connections", 64, "wrk connections")
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; servers (compression: codings) take turns in a rotating order and the median counts")
	flag.IntVar(&o.pipeline, "pipeline", 16, "HTTP pipelining depth for /plaintext (1 turns it off)")
	flag.IntVar(&o.queries, "queries", 20, "queries parameter of /queries, /updates and /cached-queries")
	flag.StringVar(&o.driver, "driver", "postgres", "database: postgres or sqlite")
	flag.StringVar(&o.dsn, "dsn", "postgres://postgres@127.0.0.1:5432/hotpath_bench?sslmode=disable", "PostgreSQL URL; the database is created and seeded when missing (ignored for sqlite)")
	flag.StringVar(&o.hotpath, "hotpath", "", "hotpath binary (make build); empty builds ./cmd/hotpath of the repository around the bench module")
	flag.StringVar(&o.config, "config", filepath.Join(mod, "..", "config.toml"), "hotpath config file")
	flag.StringVar(&o.binDir, "bin", "", "directory of prebuilt peers named after the servers; empty builds them")
	flag.StringVar(&o.out, "out", filepath.Join(mod, "results", time.Now().UTC().Format("2006-01-02")+"-"+host), "report directory")
	flag.BoolVar(&o.install, "install", false, "install wrk with apt-get when it is missing (needs root)")
	flag.BoolVar(&o.dropDB, "drop-db", false, "drop the PostgreSQL database at the end when this run created it (as make bench-smoke does)")
	flag.BoolVar(&o.capacity, "capacity", false, "search the highest open-loop rate that meets -p99 instead of the wrk comparison")
	flag.StringVar(&o.endpoint, "endpoint", "json", "endpoint of the capacity search")
	flag.DurationVar(&o.p99, "p99", 10*time.Millisecond, "capacity objective: p99 latency at most this")
	flag.DurationVar(&o.step, "step", 3*time.Second, "length of each capacity step")
	flag.IntVar(&o.startRate, "start-rate", 1000, "first capacity step, requests/s")
	flag.IntVar(&o.maxRate, "max-rate", 200000, "capacity search stops above this rate")
	flag.StringVar(&parts, "parts", "throughput", "comma-separated parts to run: "+strings.Join(partNames, ", ")+" (-capacity means capacity alone)")
	flag.StringVar(&o.note, "note", "", "a sentence for the report's header, such as other work sharing the machine")
	flag.StringVar(&latencyServers, "latency-servers", "hotpath,fiber-full,gin-full,nethttp-full", "servers of the latency part")
	flag.StringVar(&latencyEndpoints, "latency-endpoints", "json,db", "endpoints of the latency part")
	flag.DurationVar(&o.latencyStep, "latency-step", 10*time.Second, "length of each constant-rate run of the latency part")
	flag.DurationVar(&o.latencyProbe, "latency-probe", 5*time.Second, "wrk run that measures a capacity the throughput part did not")
	flag.StringVar(&latencyRates, "latency-rates", "1000,5000", "fixed rates (requests/s) every latency server also runs at")
	flag.StringVar(&o.reference, "reference", "fiber-full", "server whose capacity sets the rates every server also runs at")
	flag.StringVar(&curveServers, "curve-servers", "hotpath,fiber-full,gin-full,nethttp-full", "servers of the curves part")
	flag.StringVar(&o.curveEndpoint, "curve-endpoint", "json", "endpoint of the connections curve")
	flag.DurationVar(&o.curveDuration, "curve-duration", 5*time.Second, "length of each wrk run of the curves")
	flag.StringVar(&curveConnections, "curve-connections", "16,64,256,1024,4096", "connection counts of the connections curve")
	flag.StringVar(&curveQueries, "curve-queries", "1,5,20,100,500", "queries per request of the /queries curve")
	flag.StringVar(&curveSizes, "curve-sizes", "1,20,100", "page limits of the /api/v1/fortunes size curve")
	flag.StringVar(&curveIdle, "curve-idle", "1000,10000,30000", "idle keep-alive connection counts of the memory curve (empty skips it)")
	flag.Parse()
	o.servers = splitList(servers)
	o.endpoints = splitList(endpoints)
	o.parts = splitList(parts)
	if o.capacity {
		o.parts = []string{"capacity"}
	}
	o.latencyServers = splitList(latencyServers)
	o.latencyEndpoints = splitList(latencyEndpoints)
	o.curveServers = splitList(curveServers)

	var errs []error
	ints := func(name, list string) []int {
		ns, err := splitInts(list)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return ns
	}
	o.curveConnections = ints("-curve-connections", curveConnections)
	o.curveQueries = ints("-curve-queries", curveQueries)
	o.curveSizes = ints("-curve-sizes", curveSizes)
	o.curveIdle = ints("-curve-idle", curveIdle)
	o.latencyRates = ints("-latency-rates", latencyRates)
	for _, p := range o.parts {
		if !slices.Contains(partNames, p) {
			errs = append(errs, fmt.Errorf("-parts: unknown part %q (known: %s)", p, strings.Join(partNames, ", ")))
		}
	}
	for _, s := range o.started() {
		if !isHotpath(s) && !slices.Contains(peerNames, s) {
			errs = append(errs, fmt.Errorf("-servers: unknown server %q (known: hotpath, %s, %s)", s, hotpathTraced, strings.Join(peerNames, ", ")))
		}
	}
	for _, e := range slices.Concat(o.endpoints, []string{o.endpoint, o.curveEndpoint}, o.latencyEndpoints) {
		if _, ok := endpointPaths[e]; !ok {
			errs = append(errs, fmt.Errorf("unknown endpoint %q", e))
		}
	}
	if o.driver != "postgres" && o.driver != "sqlite" {
		errs = append(errs, fmt.Errorf("-driver %q: use postgres or sqlite", o.driver))
	}
	if len(o.servers) == 0 || o.rounds < 1 || o.connections < 1 || o.duration <= 0 || o.p99 <= 0 {
		errs = append(errs, errors.New("-servers must not be empty; -rounds, -connections, -duration and -p99 must be positive"))
	}
	if slices.ContainsFunc(o.started(), isHotpath) && o.hotpath != "" {
		if _, err := os.Stat(o.hotpath); err != nil {
			errs = append(errs, fmt.Errorf("-hotpath %s: %w (run `make build` first)", o.hotpath, err))
		}
	}
	return o, errors.Join(errs...)
}

// endpointPaths are the request paths; %d is the -queries value.
var endpointPaths = map[string]string{
	"plaintext": "/plaintext",
	// The same path one request at a time: the plaintext figure without
	// pipelining, where system calls weigh as much as for /json.
	"plaintext-single": "/plaintext",
	"json":             "/json",
	"db":               "/db",
	"queries":          "/queries?queries=%d",
	"fortunes":         "/fortunes",
	"updates":          "/updates?queries=%d",
	"cached-queries":   "/cached-queries?count=%d",
}

func endpointURL(addr, endpoint string, queries int) string {
	p := endpointPaths[endpoint]
	if strings.Contains(p, "%d") {
		p = fmt.Sprintf(p, queries)
	}
	return "http://" + addr + p
}

// splitInts parses a comma-separated list of positive integers.
func splitInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// moduleDir is the bench module's directory when run inside it (go run, make),
// so default paths work from any working directory below it.
func moduleDir() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && strings.HasSuffix(gomod, filepath.Join("bench", "go.mod")) {
		return filepath.Dir(gomod)
	}
	return "."
}

func ensureWrk(install bool) error {
	if _, err := wrk.Path(); err == nil {
		return nil
	}
	if !install {
		return fmt.Errorf("%w, or pass -install as root", wrk.ErrMissing)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: -install needs root", wrk.ErrMissing)
	}
	fmt.Println("installing wrk with apt-get")
	if exec.Command("apt-get", "install", "-y", "wrk").Run() != nil {
		// The package lists may be stale or absent on a fresh machine.
		for _, args := range [][]string{{"update"}, {"install", "-y", "wrk"}} {
			cmd := exec.Command("apt-get", args...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
			}
		}
	}
	_, err := wrk.Path()
	return err
}

func buildPeers(ctx context.Context, servers []string, binDir string) error {
	built := map[string]bool{}
	for _, s := range servers {
		pkg, _ := peerCommand(s)
		if isHotpath(s) || built[pkg] {
			continue
		}
		built[pkg] = true
		fmt.Printf("building peer %s\n", pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, pkg), "./peers/"+pkg)
		cmd.Dir = moduleDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build peer %s (run bench from inside the bench module, or pass -bin): %w\n%s", s, err, out)
		}
	}
	return nil
}

// buildHotpath builds the server from the repository that holds this bench
// module, as `make build` would but without the version stamp.
func buildHotpath(ctx context.Context, out string) error {
	fmt.Println("building hotpath")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/hotpath")
	cmd.Dir = filepath.Join(moduleDir(), "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build hotpath in %s (or pass -hotpath): %w\n%s", cmd.Dir, err, output)
	}
	return nil
}

// prepareDB makes the database ready before any server starts: for
// PostgreSQL it creates the database when missing and seeds it; for SQLite it
// gives every server a file in a fresh directory. It reports whether it
// created a PostgreSQL database, also when seeding it then failed.
func prepareDB(ctx context.Context, l *launch, work string) (created bool, err error) {
	if l.driver == "sqlite" {
		l.dsn = filepath.Join(work, "sqlite")
		return false, os.MkdirAll(l.dsn, 0o755)
	}
	created, err = createDatabase(ctx, l.dsn)
	if err != nil {
		return created, err
	}
	db, err := tfb.Open(ctx, "postgres", l.dsn, 2)
	if err != nil {
		return created, err
	}
	defer db.Close()
	return created, db.Seed(ctx)
}

// adminDSN splits a database URL into the URL of the server's postgres
// database, from which databases are created and dropped, and the name.
func adminDSN(dsn string) (admin *url.URL, name string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("parse -dsn: %w", err)
	}
	name = strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return nil, "", errors.New("-dsn names no database")
	}
	a := *u
	a.Path = "/postgres"
	return &a, name, nil
}

func createDatabase(ctx context.Context, dsn string) (bool, error) {
	admin, name, err := adminDSN(dsn)
	if err != nil {
		return false, err
	}
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return false, fmt.Errorf("connect to %s to create database %s: %w", admin.Redacted(), name, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	fmt.Printf("creating database %s\n", name)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

// dropDatabase removes the database a run created. It gets its own bound:
// the run's context may already be cancelled by Ctrl-C.
func dropDatabase(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, name, err := adminDSN(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to %s to drop database %s: %w", admin.Redacted(), name, err)
	}
	defer conn.Close(ctx)
	fmt.Printf("dropping database %s\n", name)
	// FORCE ends sessions a server that failed to stop left behind.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// startAll starts the servers one after another, so their start-up work
// (hotpath's schema check, pool warm-up) does not overlap.
func startAll(ctx context.Context, l launch, names []string) ([]*server, error) {
	var servers []*server
	for _, name := range names {
		fmt.Printf("starting %s\n", name)
		s, err := l.start(ctx, name)
		if err != nil {
			return servers, err
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// pinSelf moves every thread of this process to cpus, so vegeta's load does
// not compete with the server.
func pinSelf(cpus string) error {
	if cpus == "" {
		return nil
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, fmt.Sprint(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pin load generator to CPU %s: %w: %s", cpus, err, out)
	}
	return nil
}

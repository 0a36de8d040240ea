package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// conf renders "section.key = value" lines as a TOML file, one table per
// section; server.addr is a free loopback port unless a line sets it.
func conf(lines ...string) string {
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "server.addr") }) {
		lines = append(lines, `server.addr = "127.0.0.1:0"`)
	}
	var order []string
	sections := map[string][]string{}
	for _, l := range lines {
		section, rest, _ := strings.Cut(l, ".")
		if sections[section] == nil {
			order = append(order, section)
		}
		sections[section] = append(sections[section], rest)
	}
	var b strings.Builder
	for _, s := range order {
		fmt.Fprintf(&b, "[%s]\n%s\n", s, strings.Join(sections[s], "\n"))
	}
	return b.String()
}

// replaceFile writes body to path the way editors and config tools do: a
// new file renamed over the old one.
func replaceFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startConfigured runs hotpath in dir with -config path and extra flags;
// unlike startProc it sets no listener address by flag, so the file's
// server.addr is the one in force.
func startConfigured(t *testing.T, dir, path string, args ...string) *proc {
	t.Helper()
	base := []string{"-config", path, "--admin.addr=127.0.0.1:0",
		"--db.dsn=" + filepath.Join(dir, "hotpath.db"), "--shutdown.drain=100ms"}
	p, addrs := launchIn(t, dir, append(base, args...))
	return waitServing(t, p, addrs)
}

// waitMetric polls /metrics until the series reaches at least want.
func waitMetric(t *testing.T, p *proc, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, ok := scrape(t, p)[series]
		if ok && v >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (present %v) after 5s, want at least %v\nstderr:\n%s", series, v, ok, want, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrape reads every series of /metrics.
func scrape(t *testing.T, p *proc) map[string]float64 {
	t.Helper()
	_, body := get(t, "GET", p.admin+"/metrics")
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

var hashSeries = regexp.MustCompile(`^hotpath_config_info\{hash="([0-9a-f]{12})"\}$`)

// configHash is the hash hotpath_config_info reports; exactly one series.
func configHash(t *testing.T, p *proc) string {
	t.Helper()
	var hashes []string
	for series := range scrape(t, p) {
		if m := hashSeries.FindStringSubmatch(series); m != nil {
			hashes = append(hashes, m[1])
		}
	}
	if len(hashes) != 1 {
		t.Fatalf("hotpath_config_info series for hashes %v, want exactly one\nstderr:\n%s", hashes, p.stderr.String())
	}
	return hashes[0]
}

const reloadsOK, reloadsFailed = `config_reloads_total{result="success"}`, `config_reloads_total{result="error"}`

// accessCount counts the access-log lines of requests sent with agent.
func accessCount(p *proc, agent string) int {
	return strings.Count(p.stdout.String(), `"user_agent":"`+agent+`"`)
}

// waitAccess waits until n access lines for agent are written.
func waitAccess(t *testing.T, p *proc, agent string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for accessCount(p, agent) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d access lines for %s after 5s, want %d", accessCount(p, agent), agent, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// overloadRejections sends 4 concurrent streams of slow requests for
// 300ms and returns how many server.max_inflight refused.
func overloadRejections(t *testing.T, p *proc) float64 {
	t.Helper()
	before := metricValue(t, p, "http_overload_rejections_total")
	var wg sync.WaitGroup
	stop := time.Now().Add(300 * time.Millisecond)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				resp, err := client.Get(p.app + "/queries?queries=200")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 503 {
					t.Errorf("/queries under load: %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	return metricValue(t, p, "http_overload_rejections_total") - before
}

// TestFileEditReloadsSamplingAndInflightCap edits the -config file of a
// running process and watches the access log and the in-flight cap change.
func TestFileEditReloadsSamplingAndInflightCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	replaceFile(t, path, conf("log.access_sample = 0", "server.max_inflight = 1"))
	p := startConfigured(t, dir, path)
	defer p.stop(t)
	hash := configHash(t, p)

	if n := overloadRejections(t, p); n == 0 {
		t.Errorf("server.max_inflight = 1: no request refused under 4 concurrent streams")
	}
	for range 5 {
		get(t, "GET", p.app+"/json", "User-Agent", "before-edit")
	}

	// An in-place write, as an editor without atomic saves makes it.
	if err := os.WriteFile(path, []byte(conf("log.access_sample = 1", `server.max_inflight = "auto"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, p, reloadsOK, 1)
	for range 5 {
		get(t, "GET", p.app+"/json", "User-Agent", "after-edit")
	}
	waitAccess(t, p, "after-edit", 5)
	if n := accessCount(p, "before-edit"); n != 0 {
		t.Errorf("%d access lines at log.access_sample = 0, want 0", n)
	}
	if _, ok := scrape(t, p)["http_inflight_limit"]; !ok {
		t.Errorf("http_inflight_limit missing after server.max_inflight became \"auto\"")
	}
	if got := configHash(t, p); got == hash {
		t.Errorf("hotpath_config_info hash %s unchanged by the reload", got)
	}

	replaceFile(t, path, conf("log.access_sample = 1", "server.max_inflight = 0"))
	waitMetric(t, p, reloadsOK, 2)
	if _, ok := scrape(t, p)["http_inflight_limit"]; ok {
		t.Errorf("http_inflight_limit still published with server.max_inflight = 0")
	}
	if n := overloadRejections(t, p); n != 0 {
		t.Errorf("server.max_inflight = 0 after reload: %v requests refused, want none", n)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"config reloaded","trigger":"file change","changed":["log.access_sample","server.max_inflight"]`) {
		t.Errorf("no reload line naming the changed keys:\n%s", p.stderr.String())
	}

	// log.level by file: at error, the info line of this reload and of
	// the next one is not written.
	replaceFile(t, path, conf("log.access_sample = 1", `log.level = "error"`))
	waitMetric(t, p, reloadsOK, 3)
	replaceFile(t, path, conf("log.access_sample = 1", `log.level = "error"`, `log.slow = "1s"`))
	waitMetric(t, p, reloadsOK, 4)
	if n := strings.Count(p.stderr.String(), `"msg":"config reloaded"`); n != 2 {
		t.Errorf("%d info lines about reloads, want the 2 from before log.level became error:\n%s", n, p.stderr.String())
	}
}

// TestSIGHUPReloadsWithoutWatching turns the watch off: an edit alone
// changes nothing, SIGHUP applies it, and log.level changes what is logged.
func TestSIGHUPReloadsWithoutWatching(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	replaceFile(t, path, conf("log.access_sample = 0"))
	p := startConfigured(t, dir, path, "--reload.watch=false")
	defer p.stop(t)

	replaceFile(t, path, conf("log.access_sample = 1", `log.level = "warn"`, `server.max_inflight = "auto"`))
	time.Sleep(500 * time.Millisecond) // past the debounce, were anything watching
	if v := metricValue(t, p, reloadsOK); v != 0 {
		t.Fatalf("%v reloads with reload.watch = false and no SIGHUP, want 0", v)
	}
	if _, ok := scrape(t, p)["http_inflight_limit"]; ok {
		t.Errorf("http_inflight_limit published before the SIGHUP that sets server.max_inflight = \"auto\"")
	}
	p.signal(t, syscall.SIGHUP)
	waitMetric(t, p, reloadsOK, 1)
	get(t, "GET", p.app+"/json", "User-Agent", "after-hup")
	waitAccess(t, p, "after-hup", 1)
	if _, ok := scrape(t, p)["http_inflight_limit"]; !ok {
		t.Errorf("http_inflight_limit missing after SIGHUP set server.max_inflight = \"auto\"")
	}

	// At warn, the second reload's info line is not written.
	p.signal(t, syscall.SIGHUP)
	waitMetric(t, p, reloadsOK, 2)
	if n := strings.Count(p.stderr.String(), `"msg":"config reloaded"`); n != 0 {
		t.Errorf("%d info lines about reloads at log.level = warn, want 0:\n%s", n, p.stderr.String())
	}
	replaceFile(t, path, conf("log.access_sample = 1", `log.level = "info"`, `server.max_inflight = "auto"`))
	p.signal(t, syscall.SIGHUP)
	waitMetric(t, p, reloadsOK, 3)
	if !strings.Contains(p.stderr.String(), `"msg":"config reloaded","trigger":"SIGHUP","changed":["log.level"]`) {
		t.Errorf("no info line after log.level went back to info:\n%s", p.stderr.String())
	}
}

// kubeletPublish lays files out in dir as the kubelet mounts a ConfigMap or
// Secret: each name a symlink into ..data, itself a symlink to a
// timestamped directory. A later call swaps ..data atomically, as the
// kubelet does on an update, and removes the old directory.
func kubeletPublish(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	gen := filepath.Join(dir, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.MkdirAll(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(gen, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "..data")
	old, _ := os.Readlink(data) // absent on the first publish
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, data); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// tokenProbe sends an authorized-or-not write that the API refuses after
// the credentials check (no Content-Type: 415), so it costs no database
// work: 415 means the token was accepted, 401 that it was not.
func tokenProbe(token, app string) (int, error) {
	req, err := http.NewRequest("PUT", app+"/api/v1/worlds/1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func probe(t *testing.T, p *proc, token string) int {
	t.Helper()
	code, err := tokenProbe(token, p.app)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestKubeletSymlinkSwapReloads mounts the config and the tokens as the
// kubelet does and updates both the way it does.
func TestKubeletSymlinkSwapReloads(t *testing.T) {
	dir := t.TempDir()
	cfgDir, secretDir := filepath.Join(dir, "config"), filepath.Join(dir, "secret")
	const first, second = "first-token-0123456789", "second-token-0123456789"
	kubeletPublish(t, cfgDir, map[string]string{"config.toml": conf("log.access_sample = 0")})
	kubeletPublish(t, secretDir, map[string]string{"tokens": first + "\n"})
	p := startConfigured(t, dir, filepath.Join(cfgDir, "config.toml"), "--auth.tokens_file="+filepath.Join(secretDir, "tokens"))
	defer p.stop(t)
	if code := probe(t, p, first); code != 415 {
		t.Fatalf("mounted token: %d, want 415 (accepted)", code)
	}

	kubeletPublish(t, cfgDir, map[string]string{"config.toml": conf("log.access_sample = 1")})
	waitMetric(t, p, reloadsOK, 1)
	get(t, "GET", p.app+"/json", "User-Agent", "after-swap")
	waitAccess(t, p, "after-swap", 1)

	kubeletPublish(t, secretDir, map[string]string{"tokens": "# rotated\n" + second + "\n"})
	waitMetric(t, p, reloadsOK, 2)
	if code := probe(t, p, second); code != 415 {
		t.Errorf("token from the swapped Secret: %d, want 415 (accepted)", code)
	}
	if code := probe(t, p, first); code != 401 {
		t.Errorf("token removed from the Secret: %d, want 401", code)
	}
}

// TestBadReloadChangesNothing feeds a running process broken files: each
// is refused, counted and logged, and everything keeps running as before.
func TestBadReloadChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path, tokens := filepath.Join(dir, "config.toml"), filepath.Join(dir, "tokens")
	const token = "good-token-0123456789"
	good := conf("log.access_sample = 0", `auth.tokens_file = "`+tokens+`"`)
	replaceFile(t, tokens, token+"\n")
	replaceFile(t, path, good)
	p := startConfigured(t, dir, path) // stopped below; a failure before is killed by cleanup
	hash := configHash(t, p)

	cases := []struct {
		name, file, body, logged string
	}{
		{"syntax error", path, "[log\naccess_sample = 1\n", `config: -config (` + path + `:1:5): TOML syntax error`},
		{"unknown key", path, conf("log.access_sample = 1", "log.acess_sample = 1"), `config: log.acess_sample (` + path + `): unknown key`},
		{"bad value", path, conf("log.access_sample = 2"), `config: log.access_sample (` + path + `): must be between 0 and 1`},
		{"short token", tokens, token + "\nshort\n", `config: auth.tokens_file (` + path + `): ` + tokens + ` line 2: every token must be at least 16 characters`},
	}
	for i, tc := range cases {
		replaceFile(t, tc.file, tc.body)
		waitMetric(t, p, reloadsFailed, float64(i+1))
		if got := configHash(t, p); got != hash {
			t.Errorf("%s: config hash %s, want %s unchanged", tc.name, got, hash)
		}
		if code := probe(t, p, token); code != 415 {
			t.Errorf("%s: token refused (%d) after a failed reload", tc.name, code)
		}
		get(t, "GET", p.app+"/json", "User-Agent", "bad-"+strings.ReplaceAll(tc.name, " ", "-"))
		if !strings.Contains(p.stderr.String(), tc.logged) {
			t.Errorf("%s: log lacks %q:\n%s", tc.name, tc.logged, p.stderr.String())
		}
		// Put the good file back before the next case.
		replaceFile(t, tokens, token+"\n")
		replaceFile(t, path, good)
		time.Sleep(300 * time.Millisecond) // let the restoring reload pass
	}
	if v := metricValue(t, p, reloadsOK); v == 0 {
		t.Errorf("no restoring reload succeeded")
	}
	// Every case ran at log.access_sample = 0: had any applied its 1, the
	// request sent right after it would have been logged.
	p.stop(t)
	for _, tc := range cases {
		if n := accessCount(p, "bad-"+strings.ReplaceAll(tc.name, " ", "-")); n != 0 {
			t.Errorf("%s: request logged: the bad file's sampling was applied", tc.name)
		}
	}
	if n := strings.Count(p.stderr.String(), `"msg":"config reload failed; the running configuration is unchanged"`); n != len(cases) {
		t.Errorf("%d failure lines, want %d", n, len(cases))
	}
}

// TestTokenRotationUnderLoad rotates a token through auth.tokens_file
// while clients write: the new token works within a second of the file
// changing, the removed one is refused after, and no request holding a
// token that was valid throughout fails.
func TestTokenRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path, tokens := filepath.Join(dir, "config.toml"), filepath.Join(dir, "tokens")
	const oldToken, newToken, steady = "old-token-0123456789", "new-token-0123456789", "steady-token-0123456789"
	replaceFile(t, tokens, oldToken+"\n"+steady+"\n")
	replaceFile(t, path, conf(`auth.tokens_file = "`+tokens+`"`))
	p := startConfigured(t, dir, path)
	defer p.stop(t)

	// Load: steady-token writers (must never fail) and real PUTs.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for !stop.Load() {
				// One writer stores Worlds; the others probe the token.
				want, code, err := 415, 0, error(nil)
				if w == 0 {
					want, code, err = 200, 0, nil
					req, _ := http.NewRequest("PUT", p.app+"/api/v1/worlds/7", strings.NewReader(`{"randomNumber":77}`))
					req.Header.Set("Authorization", "Bearer "+steady)
					req.Header.Set("Content-Type", "application/json")
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
				} else {
					code, err = tokenProbe(steady, p.app)
				}
				sent.Add(1)
				if err != nil || code != want {
					failed.Add(1)
					t.Errorf("steady token during rotation: %d %v, want %d", code, err, want)
				}
			}
		})
	}

	// Add the new token: it must work within a second.
	replaceFile(t, tokens, oldToken+"\n"+steady+"\n"+newToken+"\n")
	added := time.Now()
	for probe(t, p, newToken) != 415 {
		if time.Since(added) > time.Second {
			t.Fatalf("new token still refused 1s after it was added to auth.tokens_file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("new token accepted %s after the file changed", time.Since(added).Round(time.Millisecond))
	if code := probe(t, p, oldToken); code != 415 {
		t.Errorf("old token refused (%d) before it was removed", code)
	}

	// Remove the old one: refused within a second, the new one still fine.
	replaceFile(t, tokens, "# old token removed\n"+steady+"\n"+newToken+"\n")
	removed := time.Now()
	for probe(t, p, oldToken) != 401 {
		if time.Since(removed) > time.Second {
			t.Fatalf("old token still accepted 1s after it was removed from auth.tokens_file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := probe(t, p, newToken); code != 415 {
		t.Errorf("new token refused (%d) after the old one was removed", code)
	}
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if sent.Load() < 50 || failed.Load() != 0 {
		t.Errorf("steady-token load: %d requests, %d failed; want at least 50 and none failed", sent.Load(), failed.Load())
	}
	if v := metricValue(t, p, reloadsFailed); v != 0 {
		t.Errorf("%v failed reloads during the rotation", v)
	}
}

// TestRestartKeyIsReportedWhileOthersApply changes server.addr with a
// reloadable key: the listener stays, a warning names server.addr, and
// the reloadable key applies.
func TestRestartKeyIsReportedWhileOthersApply(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	replaceFile(t, path, conf("log.access_sample = 0"))
	p := startConfigured(t, dir, path)
	defer p.stop(t)

	replaceFile(t, path, conf("log.access_sample = 1", `server.addr = "127.0.0.1:1"`, `server.name = "renamed"`))
	waitMetric(t, p, reloadsOK, 1)
	resp, _ := get(t, "GET", p.app+"/json", "User-Agent", "after-addr-change")
	waitAccess(t, p, "after-addr-change", 1)
	if resp.Header.Get("Server") != "hotpath" {
		t.Errorf("Server header %q after a reload, want hotpath until a restart", resp.Header.Get("Server"))
	}
	want := `"level":"WARN","msg":"config keys changed that need a restart; they keep their running values","keys":["server.addr","server.name"]`
	if !strings.Contains(p.stderr.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, p.stderr.String())
	}
}

// TestReloadsLeakNothing makes 100 reloads under load, each moving
// auth.tokens_file between two directories so the watch changes too:
// every request succeeds, and no goroutine or descriptor is left behind.
func TestReloadsLeakNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	const token = "steady-token-0123456789"
	var bodies [2]string
	for i := range bodies {
		sub := filepath.Join(dir, fmt.Sprint("secret", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		replaceFile(t, filepath.Join(sub, "tokens"), token+"\n")
		bodies[i] = conf(fmt.Sprintf("log.access_sample = %d", i), `auth.tokens_file = "`+filepath.Join(sub, "tokens")+`"`)
	}
	replaceFile(t, path, bodies[0])
	p := startConfigured(t, dir, path, "--admin.pprof=true")
	defer p.stop(t)

	load := func(during func()) int64 {
		var stop atomic.Bool
		var wg sync.WaitGroup
		var n atomic.Int64
		for w := range 4 {
			wg.Go(func() {
				for !stop.Load() {
					n.Add(1)
					if w%2 == 0 {
						if code, err := tokenProbe(token, p.app); err != nil || code != 415 {
							t.Errorf("token probe during reloads: %d %v, want 415 (accepted)", code, err)
							return
						}
						continue
					}
					resp, err := client.Get(p.app + "/json")
					if err != nil {
						t.Errorf("GET /json during reloads: %v", err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("GET /json during reloads: %d", resp.StatusCode)
						return
					}
				}
			})
		}
		during()
		stop.Store(true)
		wg.Wait()
		client.CloseIdleConnections()
		return n.Load()
	}
	settled := func() (goroutines float64, fds, watching int) {
		time.Sleep(300 * time.Millisecond) // the server sees the closed connections
		_, dump := get(t, "GET", p.admin+"/debug/pprof/goroutine?debug=2")
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, "internal/reload") || strings.Contains(g, "fsnotify") {
				watching++
			}
		}
		return metricValue(t, p, "go_goroutines"), openFDs(t, p), watching
	}

	load(func() { time.Sleep(500 * time.Millisecond) })
	g0, fd0, w0 := settled()
	hashes := map[string]bool{}
	n := load(func() {
		for i := range 100 {
			replaceFile(t, path, bodies[(i+1)%2])
			p.signal(t, syscall.SIGHUP)
			waitMetric(t, p, reloadsOK, float64(i+1))
			hashes[configHash(t, p)] = true
		}
	})
	time.Sleep(300 * time.Millisecond) // a debounced file reload may still come
	g1, fd1, w1 := settled()
	t.Logf("%d requests during 100 reloads; goroutines %v -> %v (reload and watch: %d -> %d), descriptors %v -> %v", n, g0, g1, w0, w1, fd0, fd1)
	if w0 == 0 || w1 != w0 {
		t.Errorf("goroutines of the reloader and its watch: %d before 100 reloads, %d after; want the same, and some", w0, w1)
	}
	if len(hashes) != 2 {
		t.Errorf("%d distinct config hashes over the reloads, want 2", len(hashes))
	}
	if v := metricValue(t, p, reloadsFailed); v != 0 {
		t.Errorf("%v failed reloads", v)
	}
	// Idle fasthttp workers linger for up to 10s, one per connection the
	// 4 clients held: a leak per reload would be 100 and more.
	if g1 > g0+4 {
		t.Errorf("goroutines %v after 100 reloads, %v before: leaked", g1, g0)
	}
	if fd1 > fd0 {
		t.Errorf("open descriptors %v after 100 reloads, %v before: leaked", fd1, fd0)
	}
}

// TestReloadTrustsANewProxy adds the test's own address to
// server.trusted_proxies: from then on the access log records the client
// its X-Forwarded-For names instead of the socket peer.
func TestReloadTrustsANewProxy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	replaceFile(t, path, conf("log.access_sample = 1"))
	p := startConfigured(t, dir, path)
	defer p.stop(t)
	get(t, "GET", p.app+"/json", "User-Agent", "untrusted", "X-Forwarded-For", "203.0.113.7")
	replaceFile(t, path, conf("log.access_sample = 1", `server.trusted_proxies = ["127.0.0.1"]`))
	waitMetric(t, p, reloadsOK, 1)
	get(t, "GET", p.app+"/json", "User-Agent", "trusted", "X-Forwarded-For", "203.0.113.7")
	waitAccess(t, p, "trusted", 1)
	for _, l := range accessLines(t, p.stdout.String()) {
		want := map[string]string{"untrusted": "127.0.0.1", "trusted": "203.0.113.7"}[l["user_agent"].(string)]
		if l["remote_addr"] != want {
			t.Errorf("%s request: remote_addr %v, want %s", l["user_agent"], l["remote_addr"], want)
		}
	}
}

// TestReloadTurnsWebhooksOnAndMovesThem starts without webhooks, adds a
// receiver by reloading, then replaces it with another: each change is
// delivered to the receivers listed when it was made.
func TestReloadTurnsWebhooksOnAndMovesThem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	tokens := `auth.tokens = ["` + apiToken + `"]`
	replaceFile(t, path, conf(tokens))
	p := startConfigured(t, dir, path)
	defer p.stop(t)
	apiChanges(t, p, 11, "before any receiver")

	first, second := newHookReceiver(t), newHookReceiver(t)
	first.listen()
	second.listen()
	hooks := func(r *hookReceiver) string {
		return conf(tokens, `webhooks.urls = ["`+r.url()+`"]`, `webhooks.secret = "`+hookSecret+`"`, `webhooks.timeout = "1s"`)
	}
	replaceFile(t, path, hooks(first))
	waitMetric(t, p, reloadsOK, 1)
	want := apiChanges(t, p, 12, "to the first receiver")
	checkEvents(t, first.wait(t, 3, 5*time.Second), want)

	replaceFile(t, path, hooks(second))
	waitMetric(t, p, reloadsOK, 2)
	want = apiChanges(t, p, 13, "to the second receiver")
	checkEvents(t, second.wait(t, 3, 5*time.Second), want)
	time.Sleep(300 * time.Millisecond) // past the dispatcher's poll
	if got := first.wait(t, 3, time.Second); len(got) != 3 {
		t.Errorf("removed receiver got %d events, want the 3 from while it was listed", len(got))
	}
	if !strings.Contains(p.stderr.String(), `"changed":["webhooks.secret","webhooks.urls"]`) ||
		!strings.Contains(p.stderr.String(), `"changed":["webhooks.urls"]`) {
		t.Errorf("reload lines do not name the webhook keys:\n%s", p.stderr.String())
	}
}

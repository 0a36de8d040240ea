package check

import (
	"context"
	"debug/elf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestServerAnswersManifestProbes runs the real hotpath binary the way the
// dev overlay's pod does (the image's config, the overlay's environment) and
// asks it what the kubelet and Prometheus will ask: the probe paths from the
// rendered Deployment, /metrics with the counter the autoscaler's adapter
// rule reads, and the SIGTERM sequence the grace period is sized for.
func TestServerAnswersManifestProbes(t *testing.T) {
	b := render(t, overlays[1])
	c := b.container(t)
	bin := buildServer(t)
	dir := t.TempDir()
	appAddr, adminAddr := freeAddr(t), freeAddr(t)
	const drain = 4 * time.Second

	config, err := filepath.Abs(rootConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", config,
		"--server.addr="+appAddr, "--admin.addr="+adminAddr, "--shutdown.drain="+drain.String())
	cmd.Env = append(podEnv(t, c.Env, dir), "PATH="+os.Getenv("PATH"))
	cmd.Dir = dir
	logs, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill() // the test failed before the clean exit it asserts
			<-exited
		}
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("server log:\n%s", out)
		}
	})

	admin := "http://" + adminAddr
	// The startup probe's whole budget, as the kubelet would allow.
	sp := c.StartupProbe
	budget := probeWindow(sp)
	up := func() bool {
		select {
		case <-exited:
			t.Fatalf("server exited during start-up: %v", waitErr)
		default:
		}
		return get(admin+sp.HTTPGet.Path) == http.StatusOK
	}
	if !eventually(budget, up) {
		t.Fatalf("startup probe %s did not answer 200 within %v", sp.HTTPGet.Path, budget)
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if code := get(admin + p.HTTPGet.Path); code != http.StatusOK {
			t.Errorf("GET %s on the admin port = %d, want 200", p.HTTPGet.Path, code)
		}
	}
	app := "http://" + appAddr
	if code := get(app + "/plaintext"); code != http.StatusOK {
		t.Fatalf("GET /plaintext = %d, want 200", code)
	}
	metrics := body(t, admin+b.deployment(t).Spec.Template.Annotations["prometheus.io/path"])
	if !strings.Contains(metrics, "\nhttp_requests_total{") {
		t.Errorf("/metrics lacks http_requests_total, which the prometheus-adapter rule turns into %s", rpsMetric)
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness fails at once, while the app port keeps serving: that is
	// what lets endpoint removal catch up without refused connections.
	ready := c.ReadinessProbe.HTTPGet.Path
	if !eventually(drain/2, func() bool { return get(admin+ready) == http.StatusServiceUnavailable }) {
		t.Errorf("%s still not 503 %v after SIGTERM", ready, drain/2)
	}
	if code := get(app + "/plaintext"); code != http.StatusOK || time.Since(start) >= drain {
		t.Errorf("GET /plaintext while draining = %d after %v, want 200 within shutdown.drain %v", code, time.Since(start), drain)
	}
	timeout := loadConfig(t, rootConfigPath).duration(t, nil, "shutdown", "timeout")
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", waitErr)
		}
		if took := time.Since(start); took < drain {
			t.Errorf("stopped %v after SIGTERM, before shutdown.drain %v ended", took, drain)
		}
	case <-time.After(drain + timeout + 5*time.Second):
		t.Fatalf("still running %v after SIGTERM", drain+timeout+5*time.Second)
	}
}

// builtServer is the binary buildServer made, kept in buildDir for the
// other tests that run it; TestMain removes buildDir.
var builtServer, buildDir string

// buildServer builds cmd/hotpath the way the Dockerfile does and checks the
// result is static: the distroless/static runtime image has no libc and no
// dynamic loader.
func buildServer(t *testing.T) string {
	t.Helper()
	if builtServer != "" {
		return builtServer
	}
	dir, err := os.MkdirTemp("", "hotpath-k8s-check")
	if err != nil {
		t.Fatal(err)
	}
	buildDir = dir
	bin := filepath.Join(dir, "hotpath")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/hotpath")
	cmd.Dir = filepath.Dir(rootConfigPath)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hotpath: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("read built binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the built binary asks for a dynamic loader: it would not start on distroless/static")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
		t.Fatalf("the built binary links %v (%v): want none", libs, err)
	}
	builtServer = bin
	return bin
}

// downward stands in for the pod fields the downward API passes.
var downward = map[string]string{"metadata.name": "hotpath-test-pod", "metadata.namespace": "test"}

// podEnv is the container's environment as the kubelet builds it: literal
// values and the downward API's pod fields, $(VAR) references to variables
// defined before expanded, and paths under the pod's volumes moved into dir.
func podEnv(t *testing.T, env []corev1.EnvVar, dir string) []string {
	t.Helper()
	var out []string
	defined := map[string]string{}
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil {
			f, ok := "", false
			if e.ValueFrom.FieldRef != nil {
				f, ok = downward[e.ValueFrom.FieldRef.FieldPath]
			}
			if !ok {
				t.Fatalf("env %s comes from %v: this test runs the overlay without Secrets", e.Name, e.ValueFrom)
			}
			v = f
		}
		for name, val := range defined {
			v = strings.ReplaceAll(v, "$("+name+")", val)
		}
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(dir, filepath.Base(v))
		}
		defined[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out
}

// freeAddr returns a loopback address with a port free at the time of the
// call; the server binds it a moment later.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// probeClient closes each connection after one request, as the kubelet's
// probes do, so no keep-alive connection delays the server's shutdown.
var probeClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// get returns the status of GET url, or 0 when no answer came.
func get(url string) int {
	resp, err := probeClient.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func body(t *testing.T, url string) string {
	t.Helper()
	resp, err := probeClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b)
}

// eventually polls cond every 50ms until it holds or d has passed.
func eventually(d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

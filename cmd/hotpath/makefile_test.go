package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// makeCommand runs make in dir with the environment of this test minus
// the flags of a surrounding make (make test sets -j, a user may pass -n),
// plus env.
func makeCommand(t *testing.T, dir string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	cmd := exec.Command(path, append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// TestMakeHelpListsEveryTarget checks that every target of the Makefile and
// the files it includes carries a "## target: what it does" comment, which
// make help prints.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	out, err := makeCommand(t, repoRoot, nil, "help").Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	help := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		name, desc, _ := strings.Cut(strings.TrimSpace(line), " ")
		help[name] = strings.TrimSpace(desc)
	}
	target := regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):([^=]|$)`)
	var targets []string
	for _, mk := range []string{"Makefile", "bench/bench.mk", "k8s/k8s.mk"} {
		raw, err := os.ReadFile(filepath.Join(repoRoot, mk))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range target.FindAllStringSubmatch(string(raw), -1) {
			targets = append(targets, m[1])
		}
	}
	if len(targets) < 20 {
		t.Fatalf("found only %d targets (%v); the parse is broken", len(targets), targets)
	}
	for _, name := range targets {
		if help[name] == "" {
			t.Errorf("make help has no line for %s; add a \"## %s: what it does\" comment above it", name, name)
		}
	}
}

// makeSandbox copies the Makefiles into a fresh directory and puts there a
// stand-in for go that records its arguments in go.log and, for a build,
// writes the -o file, so the Makefile's own logic runs in seconds. PATH
// holds only that directory and the few tools the recipes use, so wrk and
// node are missing.
func makeSandbox(t *testing.T) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	for _, mk := range []string{"Makefile", "bench/bench.mk", "k8s/k8s.mk"} {
		raw, err := os.ReadFile(filepath.Join(repoRoot, mk))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(mk)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, mk), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tools := filepath.Join(dir, "tools")
	if err := os.Mkdir(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\necho \"$@\" >> " + filepath.Join(dir, "go.log") + "\n" +
		"while [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then mkdir -p \"$(dirname \"$2\")\" && : > \"$2\"; fi; shift; done\n"
	if err := os.WriteFile(filepath.Join(tools, "go"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"mkdir", "dirname", "rm"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(tools, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, []string{"PATH=" + tools, "GO=" + filepath.Join(tools, "go"), "CI=", "HOTPATH_TEST_SKIPS="}
}

// TestFirstBuildSaysWhatItDoes: the first make build (or make run) on a
// checkout says why it may take minutes; later builds say nothing.
func TestFirstBuildSaysWhatItDoes(t *testing.T) {
	dir, env := makeSandbox(t)
	const want = "make build: first build: Go downloads the modules hotpath needs and compiles them, which can take a few minutes"
	for i, wantLine := range []bool{true, false} {
		out, err := makeCommand(t, dir, env, "-s", "build").CombinedOutput()
		if err != nil {
			t.Fatalf("make build #%d: %v\n%s", i+1, err, out)
		}
		// -s hides the recipe; git is missing from PATH, so its complaint may come too.
		has := strings.Contains(string(out), want+"\n")
		if has != wantLine {
			t.Errorf("make build #%d: output %q; want the first-build line: %v", i+1, out, wantLine)
		}
	}
}

// TestSkipSummaryIsOneLine runs the Makefile's summary of a test run's skip
// notes on a notes file, and on an empty one.
func TestSkipSummaryIsOneLine(t *testing.T) {
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes")
	cases := []struct{ notes, want string }{
		{"", "make test: every suite ran; nothing was skipped"},
		{"PostgreSQL tests\tHOTPATH_TEST_POSTGRES_DSN is not set\nbrowser tests\tchromium is not installed\n" +
			"PostgreSQL tests\tHOTPATH_TEST_POSTGRES_DSN is not set\nbench smoke run\twrk is not installed\n",
			"make test: skipped, so not tested here: PostgreSQL tests (2): HOTPATH_TEST_POSTGRES_DSN is not set;" +
				" browser tests (1): chromium is not installed; bench smoke run (1): wrk is not installed"},
	}
	for _, tc := range cases {
		if err := os.WriteFile(notes, []byte(tc.notes), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := makeCommand(t, repoRoot, nil, "-s", "-f", "Makefile", "-f", "-", "summary-of-skips")
		cmd.Stdin = strings.NewReader("summary-of-skips:\n\t@$(SKIP_SUMMARY) " + notes + "\n")
		out, err := cmd.Output()
		if err != nil || string(out) != tc.want+"\n" {
			t.Errorf("notes %q: got %q (%v), want %q", tc.notes, out, err, tc.want+"\n")
		}
	}
}

// TestBenchSmokeSkipsWithoutWrkOnlyOutsideCI: without wrk the smoke run is
// skipped and noted for the summary; under CI=true it runs and fails there.
func TestBenchSmokeSkipsWithoutWrkOnlyOutsideCI(t *testing.T) {
	dir, env := makeSandbox(t)
	notes := filepath.Join(dir, "notes")
	out, err := makeCommand(t, dir, append(env, "HOTPATH_TEST_SKIPS="+notes), "-s", "bench-smoke").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bench-smoke: skipped: wrk is not installed (apt-get install wrk)\n") {
		t.Errorf("without wrk: %v, output %q; want a skip that says why", err, out)
	}
	if got, _ := os.ReadFile(notes); string(got) != "bench smoke run\twrk is not installed\n" {
		t.Errorf("notes %q, want the skip noted", got)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "go.log"))
	if strings.Contains(string(log), "./cmd/bench") {
		t.Errorf("outside CI without wrk the runner ran anyway: %s", log)
	}

	// bench/ holds no module here; the stand-in go accepts the run.
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = makeCommand(t, dir, append(env, "CI=true"), "-s", "bench-smoke").CombinedOutput()
	log, _ = os.ReadFile(filepath.Join(dir, "go.log"))
	if err != nil || strings.Contains(string(out), "skipped") || !strings.Contains(string(log), "run ./cmd/bench") || !strings.Contains(string(log), "-drop-db") {
		t.Errorf("under CI=true: %v, output %q, go calls %q; want the runner called with -drop-db", err, out, log)
	}
}

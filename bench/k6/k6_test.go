// Package k6_test checks that the k6 scripts parse. k6 itself cannot be
// installed here, so node checks their syntax as ES modules.
package k6_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hotpath/hotpath/bench/internal/testskip"
)

// checkModule copies src to a .mjs file, since node treats .js files as
// CommonJS and would not parse import statements, and runs node --check.
func checkModule(t *testing.T, node string, src []byte) ([]byte, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.mjs")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(node, "--check", path).CombinedOutput()
}

func TestScriptsParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but node is not installed")
		}
		testskip.Skip(t, "k6 script checks", "node is not installed")
	}
	if out, err := checkModule(t, node, []byte("import http from 'k6/http';\nexport default function () { http.get( }\n")); err == nil {
		t.Fatalf("node --check accepted a broken script: %s", out)
	}
	scripts, err := filepath.Glob("*.js")
	if err != nil || len(scripts) != 3 {
		t.Fatalf("found scripts %v (%v), want smoke.js, load.js, stress.js", scripts, err)
	}
	for _, name := range scripts {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := checkModule(t, node, src); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

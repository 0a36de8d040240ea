// Package testskip lets the bench module's tests that cannot run here (no
// wrk, no node, no PostgreSQL) say so in the summary make test ends with.
// It mirrors the server module's testenv.Skip; the two modules share no code.
package testskip

import (
	"os"
	"strings"
	"testing"
)

// Env names the file make test collects the notes in.
const Env = "HOTPATH_TEST_SKIPS"

// Skip notes "suite<TAB>reason" in $HOTPATH_TEST_SKIPS, when set, and skips
// t. Callers fail instead under CI=true; Skip is for the other case only.
func Skip(t testing.TB, suite, reason string) {
	t.Helper()
	if path := os.Getenv(Env); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			clean := strings.NewReplacer("\t", " ", "\n", " ")
			// One short O_APPEND write: concurrent test processes never
			// interleave lines. A failed note only shortens the summary.
			_, _ = f.WriteString(clean.Replace(suite) + "\t" + clean.Replace(reason) + "\n")
			f.Close()
		}
	}
	t.Skipf("%s skipped: %s", suite, reason)
}

package testenv

import (
	"os"
	"strings"
	"testing"
)

// SkipsEnv names the file in which tests note what they skipped; make test
// sets it and ends with a one-line summary of the file, so that a green run
// outside CI never hides the coverage it lacked.
const SkipsEnv = "HOTPATH_TEST_SKIPS"

// Skip skips t because suite (say "PostgreSQL tests") cannot run here for
// reason (say "HOTPATH_TEST_POSTGRES_DSN is not set"), noting both in
// $HOTPATH_TEST_SKIPS. Callers fail instead under CI=true; Skip is for the
// other case only.
func Skip(t testing.TB, suite, reason string) {
	t.Helper()
	NoteSkip(suite, reason)
	t.Skipf("%s skipped: %s", suite, reason)
}

// NoteSkip appends "suite<TAB>reason" to $HOTPATH_TEST_SKIPS, when set. A
// note that cannot be written only leaves the summary short, so it is not
// an error: the test itself still says it skipped.
func NoteSkip(suite, reason string) {
	path := os.Getenv(SkipsEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	// One short write with O_APPEND: test processes running at once never
	// interleave their lines.
	_, _ = f.WriteString(clean(suite) + "\t" + clean(reason) + "\n")
}

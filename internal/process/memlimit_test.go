package process

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestMemoryLimitFollowsTheCgroup(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	dir := t.TempDir()
	n := 0
	write := func(body string) string {
		n++
		p := filepath.Join(dir, "memory.max."+string(rune('a'+n)))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		env  []string
		file string
		want int64
	}{
		{nil, write("536870912\n"), 483183819},
		{[]string{"GOMEMLIMIT=100MiB"}, write("536870912\n"), 0},
		{nil, write("max\n"), 0},
		{nil, filepath.Join(dir, "missing"), 0},
	}
	for _, tc := range cases {
		debug.SetMemoryLimit(math.MaxInt64)
		got := applyMemoryLimit(tc.env, tc.file)
		if got != tc.want {
			t.Errorf("env %v file %s: limit %d, want %d", tc.env, tc.file, got, tc.want)
		}
		if tc.want > 0 && debug.SetMemoryLimit(-1) != tc.want {
			t.Errorf("runtime limit %d, want %d", debug.SetMemoryLimit(-1), tc.want)
		}
	}
}

package process

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryMax is where cgroup v2 publishes the container's memory limit.
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// applyMemoryLimit sets Go's soft memory limit to 90% of the container's
// memory limit when GOMEMLIMIT is not set, so the GC works harder before the
// kernel's OOM killer would. It returns the limit set, or 0.
func applyMemoryLimit(environ []string, cgroupFile string) int64 {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMEMLIMIT=") {
			return 0 // the operator chose; the runtime already applied it
		}
	}
	raw, err := os.ReadFile(cgroupFile)
	if err != nil {
		return 0 // not in a cgroup v2 container
	}
	limit, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || limit <= 0 {
		return 0 // "max": no limit
	}
	soft := limit / 10 * 9
	debug.SetMemoryLimit(soft)
	return soft
}

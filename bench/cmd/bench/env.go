package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/hotpath/hotpath/bench/internal/report"
)

// environment describes this machine and checkout for the report.
func environment(pinning string) report.Env {
	host, _ := os.Hostname() // an unnamed host is reported as such
	e := report.Env{
		Host:       host,
		CPUModel:   cpuModel(),
		Cores:      runtime.NumCPU(),
		Kernel:     firstLine("uname", "-sr"),
		GoVersion:  firstLine("go", "version"),
		Commit:     firstLine("git", "describe", "--always", "--dirty", "--abbrev=12"),
		Pinning:    pinning,
		WrkVersion: strings.TrimSpace(strings.Split(firstLine("wrk", "-v"), "Copyright")[0]),
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) >= 3 {
			e.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	return e
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// firstLine runs a command and returns the first line it printed, or
// "unknown"; wrk -v exits non-zero after printing its version.
func firstLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if line == "" {
		return "unknown"
	}
	return strings.TrimSpace(line)
}

// Package wrk runs the wrk load generator and reads its results. The Lua
// scripts in this directory are shipped for users and embedded for the bench
// runner, which concatenates report.lua (machine-readable output) with the
// script that shapes the load.
package wrk

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed *.lua
var scripts embed.FS

// Script returns the named embedded scripts (such as "pipeline.lua",
// "report.lua") joined into one Lua source.
func Script(names ...string) (string, error) {
	var b strings.Builder
	for _, name := range names {
		src, err := scripts.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("read script %s: %w", name, err)
		}
		b.Write(src)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// ErrMissing is returned when wrk is not installed.
var ErrMissing = errors.New("wrk not found on PATH: install it with `apt-get install wrk`")

// Path returns the wrk executable, or ErrMissing.
func Path() (string, error) {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return "", ErrMissing
	}
	return p, nil
}

// Options describe one wrk run.
type Options struct {
	URL         string
	Threads     int
	Connections int
	Duration    time.Duration
	// Timeout is wrk's per-request timeout; slower answers count as timeouts.
	Timeout time.Duration
	// Scripts are embedded script names; report.lua is always added last.
	Scripts []string
	// Args follow "--" on the command line and reach the scripts' init.
	Args []string
	// Headers are added to every request, each "Name: value" (wrk -H).
	Headers []string
	// CPUs, when set, pins wrk with taskset (for example "1").
	CPUs string
}

// Errors are wrk's error counters; Status counts responses with status >= 400.
type Errors struct {
	Connect int64 `json:"connect"`
	Read    int64 `json:"read"`
	Write   int64 `json:"write"`
	Status  int64 `json:"status"`
	Timeout int64 `json:"timeout"`
}

// Total is the sum of all error counters.
func (e Errors) Total() int64 { return e.Connect + e.Read + e.Write + e.Status + e.Timeout }

// Latency holds wrk's latency statistics in microseconds.
type Latency struct {
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	Stdev float64 `json:"stdev"`
	Max   float64 `json:"max"`
	P50   float64 `json:"p50"`
	P75   float64 `json:"p75"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
}

// Result is one run as report.lua prints it.
type Result struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	Errors     Errors  `json:"errors"`
	LatencyUS  Latency `json:"latency_us"`
}

// RPS is the achieved rate of answered requests per second.
func (r Result) RPS() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

const marker = "WRK_JSON "

// Parse finds the line report.lua printed in wrk's output and decodes it.
func Parse(out []byte) (Result, error) {
	var r Result
	for line := range bytes.Lines(out) {
		rest, ok := bytes.CutPrefix(line, []byte(marker))
		if !ok {
			continue
		}
		if err := json.Unmarshal(bytes.TrimSpace(rest), &r); err != nil {
			return r, fmt.Errorf("decode wrk report %q: %w", bytes.TrimSpace(rest), err)
		}
		return r, nil
	}
	return r, fmt.Errorf("no %q line in wrk output (was report.lua loaded?): %s", strings.TrimSpace(marker), tail(out))
}

// Run runs wrk once and returns the parsed result and wrk's full output.
func Run(ctx context.Context, o Options) (Result, []byte, error) {
	bin, err := Path()
	if err != nil {
		return Result{}, nil, err
	}
	src, err := Script(append(o.Scripts, "report.lua")...)
	if err != nil {
		return Result{}, nil, err
	}
	dir, err := os.MkdirTemp("", "wrk")
	if err != nil {
		return Result{}, nil, fmt.Errorf("create script dir: %w", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "run.lua")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		return Result{}, nil, fmt.Errorf("write wrk script: %w", err)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second // TechEmpower's setting
	}
	args := []string{
		"-t", strconv.Itoa(max(o.Threads, 1)),
		"-c", strconv.Itoa(o.Connections),
		"-d", seconds(o.Duration),
		"--timeout", seconds(timeout),
	}
	for _, h := range o.Headers {
		args = append(args, "-H", h)
	}
	args = append(args, "--latency", "-s", script, o.URL)
	if len(o.Args) > 0 {
		args = append(append(args, "--"), o.Args...)
	}
	name := bin
	if o.CPUs != "" {
		args = append([]string{"-c", o.CPUs, bin}, args...)
		name = "taskset"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, out, fmt.Errorf("run %s: %w: %s", strings.Join(cmd.Args, " "), err, tail(out))
	}
	r, err := Parse(out)
	return r, out, err
}

// seconds renders d as a whole number of seconds with a suffix, which every
// wrk version accepts; at least 1s.
func seconds(d time.Duration) string {
	return strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + "s"
}

func tail(out []byte) string {
	const n = 400
	s := strings.TrimSpace(string(out))
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// Package report holds the results of a bench run and renders them as
// results.json, report.md and SVG charts in one directory.
package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/hotpath/hotpath/bench/wrk"
)

// Results is everything one results directory describes. A throughput run and
// a capacity run may write to the same directory; each replaces its own part.
type Results struct {
	Env        Env            `json:"environment"`
	Throughput Throughput     `json:"throughput"`
	Capacity   *Capacity      `json:"capacity,omitempty"`
	Latency    *LatencyAtRate `json:"latency_at_rate,omitempty"`
	Curves     *Curves        `json:"curves,omitempty"`
	// Compression is hotpath alone, each page asked for in each coding.
	Compression *Compression `json:"compression,omitempty"`
}

// Env describes the machine and build the figures come from.
type Env struct {
	Host      string `json:"host"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	// Pinning says which CPUs the servers and the load generator used.
	Pinning    string `json:"pinning"`
	WrkVersion string `json:"wrk_version"`
	Date       string `json:"date"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures once the
	// servers are up and before any load: well above 0 means other work
	// was competing for the CPUs.
	LoadAverage string `json:"load_average"`
	// Note is what the person running the bench said about the run
	// (-note), such as other work sharing the machine.
	Note string `json:"note,omitempty"`
}

// Throughput is a closed-loop wrk comparison of servers over endpoints.
type Throughput struct {
	Command string `json:"command"`
	// Env is the environment of this part, which may be older than the
	// other part's when both were run into one directory.
	Env       Env      `json:"environment"`
	Driver    string   `json:"driver"`
	Servers   []string `json:"servers"`
	Endpoints []string `json:"endpoints"`
	// Paths maps each endpoint to the request path wrk sent.
	Paths       map[string]string `json:"paths"`
	Duration    string            `json:"duration"`
	Warmup      string            `json:"warmup"`
	Connections int               `json:"connections"`
	Threads     int               `json:"threads"`
	Pipeline    int               `json:"pipeline"`
	Queries     int               `json:"queries"`
	Rounds      int               `json:"rounds"`
	Runs        []Run             `json:"runs"`
	// Summary holds one row per server and endpoint: medians over rounds.
	Summary []Summary `json:"summary"`
}

// Run is one wrk run of one server on one endpoint.
type Run struct {
	Server    string      `json:"server"`
	Endpoint  string      `json:"endpoint"`
	Round     int         `json:"round"`
	RPS       float64     `json:"rps"`
	Requests  int64       `json:"requests"`
	LatencyUS wrk.Latency `json:"latency_us"`
	Errors    wrk.Errors  `json:"errors"`
	// CPUCores is the server's CPU time over the run divided by wall time.
	CPUCores float64 `json:"cpu_cores"`
	// OtherCPU is how much of the server's pinned CPU anything else used
	// during the run, in cores; well above 0 means the server was starved.
	OtherCPU float64 `json:"other_cpu_cores"`
	// PeakRSS is the server's VmHWM after the run, in bytes.
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// Summary is the median of a server's runs on one endpoint.
type Summary struct {
	Server   string  `json:"server"`
	Endpoint string  `json:"endpoint"`
	Rounds   int     `json:"rounds"`
	RPS      float64 `json:"rps"`
	P50US    float64 `json:"p50_us"`
	P90US    float64 `json:"p90_us"`
	P99US    float64 `json:"p99_us"`
	P999US   float64 `json:"p999_us"`
	// Errors is the sum over rounds of socket errors and responses >= 400.
	Errors   int64   `json:"errors"`
	CPUCores float64 `json:"cpu_cores"`
	OtherCPU float64 `json:"other_cpu_cores"`
	PeakRSS  int64   `json:"peak_rss_bytes"`
}

// Summarize fills t.Summary from t.Runs, in the order of t.Endpoints and
// t.Servers.
func (t *Throughput) Summarize() {
	t.Summary = t.Summary[:0]
	for _, ep := range t.Endpoints {
		for _, srv := range t.Servers {
			var runs []Run
			for _, r := range t.Runs {
				if r.Server == srv && r.Endpoint == ep {
					runs = append(runs, r)
				}
			}
			if len(runs) == 0 {
				continue
			}
			s := Summary{Server: srv, Endpoint: ep, Rounds: len(runs)}
			s.RPS = median(runs, func(r Run) float64 { return r.RPS })
			s.P50US = median(runs, func(r Run) float64 { return r.LatencyUS.P50 })
			s.P90US = median(runs, func(r Run) float64 { return r.LatencyUS.P90 })
			s.P99US = median(runs, func(r Run) float64 { return r.LatencyUS.P99 })
			s.P999US = median(runs, func(r Run) float64 { return r.LatencyUS.P999 })
			s.CPUCores = median(runs, func(r Run) float64 { return r.CPUCores })
			s.OtherCPU = median(runs, func(r Run) float64 { return r.OtherCPU })
			for _, r := range runs {
				s.Errors += r.Errors.Total()
				s.PeakRSS = max(s.PeakRSS, r.PeakRSS)
			}
			t.Summary = append(t.Summary, s)
		}
	}
}

// median of f over runs; the mean of the middle two for an even count.
func median[R any](runs []R, f func(R) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Capacity is an open-loop search for the highest rate a server sustains.
type Capacity struct {
	Command string `json:"command"`
	// Env is the environment of this part; see Throughput.Env.
	Env      Env    `json:"environment"`
	Driver   string `json:"driver"`
	Endpoint string `json:"endpoint"`
	// TargetP99US is the latency objective, in microseconds.
	TargetP99US float64          `json:"target_p99_us"`
	Step        string           `json:"step"`
	Servers     []CapacityServer `json:"servers"`
}

// CapacityServer is one server's search.
type CapacityServer struct {
	Server string `json:"server"`
	// MaxRate is the highest rate that met the objective; 0 if none did.
	MaxRate float64 `json:"max_rate"`
	// Limit says what ended the search.
	Limit string         `json:"limit"`
	Steps []CapacityStep `json:"steps"`
}

// CapacityStep is one constant-rate attack.
type CapacityStep struct {
	Rate     int     `json:"rate"`
	Sent     float64 `json:"sent_rate"`
	Achieved float64 `json:"throughput"`
	P50US    float64 `json:"p50_us"`
	P90US    float64 `json:"p90_us"`
	P99US    float64 `json:"p99_us"`
	P999US   float64 `json:"p999_us"`
	MaxUS    float64 `json:"max_us"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	OK       bool    `json:"ok"`
	// ServerCPU and LoadCPU are the cores the server and the load
	// generator used during the step.
	ServerCPU float64 `json:"server_cpu_cores"`
	LoadCPU   float64 `json:"load_cpu_cores"`
}

// Load reads dir/results.json; a missing file gives empty Results.
func Load(dir string) (Results, error) {
	var r Results
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if os.IsNotExist(err) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read results: %w", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("decode %s: %w", filepath.Join(dir, "results.json"), err)
	}
	return r, nil
}

// Write writes results.json, report.md and the charts into dir.
func Write(dir string, r Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir: %w", err)
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	files := map[string][]byte{
		"results.json": append(raw, '\n'),
		"report.md":    Markdown(r),
	}
	if len(r.Throughput.Summary) > 0 {
		files["throughput.svg"] = ThroughputSVG(r.Throughput)
		files["latency.svg"] = LatencySVG(r.Throughput)
	}
	if r.Capacity != nil {
		files["capacity.svg"] = CapacitySVG(*r.Capacity)
	}
	if r.Latency != nil {
		for _, ep := range r.Latency.Endpoints {
			files["latency-rate-"+ep+".svg"] = LatencyRateSVG(*r.Latency, ep)
		}
	}
	if r.Curves != nil {
		maps.Copy(files, CurveSVGs(*r.Curves))
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

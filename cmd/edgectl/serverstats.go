package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// serverSample is what bench reads of the server's memory at one moment.
// Fields the server does not expose are -1.
type serverSample struct {
	RSS        int64 `json:"rss_bytes"`
	HeapInuse  int64 `json:"heap_inuse_bytes"` // go_memstats_heap_inuse_bytes
	Goroutines int64 `json:"goroutines"`
}

// Names in the server's /metrics that bench reads.
const (
	metricRSS        = "process_resident_memory_bytes"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricGoroutines = "go_goroutines"
)

// sampler reads serverSamples: RSS from /proc/PID/status when the server's
// pid is known (exact, and costs the server nothing), else from /metrics;
// heap and goroutines from /metrics when it answers.
type sampler struct {
	client     *http.Client
	metricsURL string
	header     http.Header
	pid        int
}

// Sample reads the server's figures now. It fails only when RSS cannot be
// read, the one figure bench needs.
func (s *sampler) Sample(ctx context.Context) (serverSample, error) {
	out := serverSample{RSS: -1, HeapInuse: -1, Goroutines: -1}
	m, merr := s.metrics(ctx)
	if merr == nil {
		out.HeapInuse = metricInt(m, metricHeapInuse)
		out.Goroutines = metricInt(m, metricGoroutines)
		out.RSS = metricInt(m, metricRSS)
	}
	if s.pid > 0 {
		rss, err := readVmRSS(fmt.Sprintf("/proc/%d/status", s.pid))
		if err != nil {
			return out, err
		}
		out.RSS = rss
		return out, nil
	}
	if merr != nil {
		return out, fmt.Errorf("reading server RSS from /metrics (or give --pid): %w", merr)
	}
	if out.RSS < 0 {
		return out, fmt.Errorf("/metrics has no %s (give --pid)", metricRSS)
	}
	return out, nil
}

// metrics fetches and parses the server's /metrics.
func (s *sampler) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", s.metricsURL, resp.Status, readErrorBody(resp.Body))
	}
	return parseMetrics(resp.Body, metricRSS, metricHeapInuse, metricGoroutines)
}

// metricInt is m[name] as an integer, -1 when absent.
func metricInt(m map[string]float64, name string) int64 {
	v, ok := m[name]
	if !ok {
		return -1
	}
	return int64(v)
}

// parseMetrics reads the unlabelled samples of the named metrics from
// Prometheus text exposition. Values may be in exponent form
// (1.2345e+07), which is how client_golang writes large gauges.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// name value [timestamp]; a labelled sample has "{" in its name.
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// readVmRSS reads the resident set size from a /proc/PID/status file, in
// bytes ("VmRSS:     12345 kB").
func readVmRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseVmRSS(b)
}

// parseVmRSS reads VmRSS out of the contents of a /proc/PID/status file.
func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS line (a kernel thread or a zombie?)")
}

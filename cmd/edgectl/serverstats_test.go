package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.3470080e+07
go_goroutines 42
go_memstats_heap_inuse_bytes{le="x"} 1
go_memstats_heap_inuse_bytes 8.192e+06
edge_streams{proto="http1"} 3
`
	m, err := parseMetrics(strings.NewReader(text), metricRSS, metricHeapInuse, metricGoroutines, "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{metricRSS: 23470080, metricGoroutines: 42, metricHeapInuse: 8192000}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if metricInt(m, "absent") != -1 {
		t.Error("an absent metric should read -1")
	}
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	rss, err := parseVmRSS([]byte("Name:\tedge\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"))
	if err != nil || rss != 12345*1024 {
		t.Fatalf("parseVmRSS = %d, %v; want %d", rss, err, 12345*1024)
	}
	if _, err := parseVmRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("want an error without a VmRSS line")
	}
	// The real file of this process.
	if rss, err := readVmRSS("/proc/self/status"); err != nil || rss <= 0 {
		if _, statErr := os.Stat("/proc/self/status"); statErr == nil {
			t.Errorf("readVmRSS(/proc/self/status) = %d, %v", rss, err)
		}
	}
}

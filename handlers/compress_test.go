package handlers

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/edge-rt/edge/internal/ssetest"
	"github.com/klauspost/compress/gzip"
)

func TestNegotiateEncoding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		accept  string
		allowed []string
		want    string
	}{
		{"gzip, deflate, br", []string{"br", "gzip"}, "br"},
		{"gzip, deflate, br", []string{"gzip", "br"}, "gzip"},
		{"gzip", []string{"br"}, ""},
		{"br;q=0, gzip", []string{"br", "gzip"}, "gzip"},
		{"BR", []string{"br"}, "br"},
		{"", []string{"br", "gzip"}, ""},
		{"br", nil, ""},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", c.accept)
		if got := negotiateEncoding(r, c.allowed); got != c.want {
			t.Errorf("Accept-Encoding %q allowed %v: %q, want %q", c.accept, c.allowed, got, c.want)
		}
	}
}

// TestCompressedStreamsFlushPerEvent checks that each event can be decoded
// as soon as it is written: a compressor that held it back would stall the
// stream behind proxies and in browsers alike.
func TestCompressedStreamsFlushPerEvent(t *testing.T) {
	t.Parallel()
	readers := map[string]func(io.Reader) (io.Reader, error){
		"br":   func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil },
		"gzip": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
	}
	for enc, newReader := range readers {
		t.Run(enc, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, testStream)
			req, _ := http.NewRequest("GET", s.URL+"/v1/stream?topic=z", nil)
			req.Header.Set("Accept-Encoding", enc)
			req.Header.Set("Authorization", "Bearer "+s.token)
			// The test server offers both encodings; the client asks for one.
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != enc {
				t.Fatalf("Content-Encoding %q, want %q", got, enc)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
				t.Fatal("no Vary: Accept-Encoding")
			}
			dec, err := newReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			st := ssetest.FromReader(dec)
			st.Next(t, 5*time.Second, func(f ssetest.Frame) bool { return f.HasID })
			for i := range 3 {
				s.publish(t, "z", `{"data":"compressed `+string(rune('a'+i))+`"}`)
				f := st.Next(t, 5*time.Second, ssetest.Event)
				if !strings.Contains(f.Data, "compressed "+string(rune('a'+i))) {
					t.Fatalf("event %d: %q", i, f.Data)
				}
			}
		})
	}
}

// BenchmarkCompressorMemory measures the memory one stream's compressor
// holds after it has compressed and flushed an event: it lives as long as
// the stream, so it is the price of compression per connection.
func BenchmarkCompressorMemory(b *testing.B) {
	event := []byte("id: aXyZAbC91\ndata: {\"topic\":\"orders\",\"data\":{\"id\":17,\"status\":\"paid\",\"total\":\"12.50\"},\"ts\":1795749448376}\n\n")
	for _, enc := range []string{"br", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			const streams = 200
			var before, after runtime.MemStats
			for range b.N {
				keep := make([]flushWriter, streams)
				runtime.GC()
				runtime.ReadMemStats(&before)
				for i := range keep {
					keep[i] = newCompressor(enc, io.Discard)
					keep[i].Write(event)
					keep[i].Flush()
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(keep)
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/streams/1024, "KiB/stream")
		})
	}
}

package handlers

import (
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// Stream compression is opt-in (sse.compression) and costs memory per
// stream for the whole life of the stream, so the settings favour small
// windows over ratio. Measured by BenchmarkCompressorMemory in
// compress_test.go and recorded in docs/BENCHMARKS.md: brotli quality 3,
// window 2^14, and gzip level 1 (klauspost's fastest encoder).
const (
	brotliQuality = 3
	brotliLGWin   = 14
	gzipLevel     = gzip.BestSpeed
)

// flushWriter is a compressor that can push out what it holds.
type flushWriter interface {
	io.Writer
	Flush() error
}

// negotiateEncoding picks the stream's encoding: the first of the allowed
// encodings, in the server's order, that the request accepts; "" for none.
func negotiateEncoding(r *http.Request, allowed []string) string {
	if len(allowed) == 0 {
		return ""
	}
	var accepted []string
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.ReplaceAll(strings.TrimSpace(params), " ", "") == "q=0" {
			continue
		}
		accepted = append(accepted, strings.ToLower(strings.TrimSpace(name)))
	}
	for _, enc := range allowed {
		if slices.Contains(accepted, enc) {
			return enc
		}
	}
	return ""
}

// newCompressor returns the writer that compresses into w, flushed after
// every write so no event waits in the compressor.
func newCompressor(encoding string, w io.Writer) flushWriter {
	switch encoding {
	case "br":
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: brotliQuality, LGWin: brotliLGWin})
	case "gzip":
		zw, _ := gzip.NewWriterLevel(w, gzipLevel) // the level is valid
		return zw
	}
	return nil
}

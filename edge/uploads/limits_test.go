package uploads

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/edge-rt/edge/internal/testproc"
)

// wantRefused checks a tus error response.
func wantRefused(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	body := readBody(resp)
	if resp.StatusCode != status || !strings.HasPrefix(body, code+": ") {
		t.Errorf("got %d %q, want %d %s", resp.StatusCode, body, status, code)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, func(c *Config) { c.Dir = dir; c.MaxConcurrentPerUser = 2 }, nil)
	loc, _ := h.mustCreate("alice", 3, nil)
	h.mustCreate("alice", 3, nil)
	wantRefused(t, h.create("alice", 3, nil), http.StatusTooManyRequests, "ERR_TOO_MANY_UPLOADS")
	h.mustCreate("bob", 3, nil)

	// A restart counts what is on disk.
	h2 := newHarness(t, func(c *Config) { c.Dir = dir; c.MaxConcurrentPerUser = 2 }, nil)
	wantRefused(t, h2.create("alice", 3, nil), http.StatusTooManyRequests, "ERR_TOO_MANY_UPLOADS")

	// Finishing one frees its slot.
	h.mustPatch("alice", loc, 0, []byte("abc"))
	h.mustCreate("alice", 3, nil)
	if got := h.s.Metrics().Snapshot().Refusals["ERR_TOO_MANY_UPLOADS"]; got != 1 {
		t.Errorf("refusals counted: %d", got)
	}
}

func TestBytesLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.MaxBytesPerUser = 100 }, nil)
	h.mustCreate("alice", 60, nil)
	wantRefused(t, h.create("alice", 50, nil), http.StatusForbidden, "ERR_QUOTA_EXCEEDED")
	h.mustCreate("alice", 40, nil)

	// A deferred length counts as MaxSize until it is declared.
	h2 := newHarness(t, func(c *Config) { c.MaxBytesPerUser = 100; c.MaxSize = 80 }, nil)
	loc, _ := h2.mustCreate("bob", -1, nil, "Upload-Defer-Length", "1")
	wantRefused(t, h2.create("bob", 30, nil), http.StatusForbidden, "ERR_QUOTA_EXCEEDED")
	resp := h2.do("bob", http.MethodPatch, loc, strings.NewReader("x"),
		"Content-Type", "application/offset+octet-stream", "Upload-Offset", "0", "Upload-Length", "10")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("declaring the length: %d %s", resp.StatusCode, readBody(resp))
	}
	h2.mustCreate("bob", 30, nil)
	if n, b := h2.s.quota.usageOf("bob"); n != 2 || b != 40 {
		t.Errorf("bob's usage = %d uploads, %d bytes; want 2, 40", n, b)
	}

	// A deferred upload this node did not count (made on another node) is
	// charged when it declares its length; over quota, it is removed and
	// its owner told.
	loc, id := h2.mustCreate("carol", -1, nil, "Upload-Defer-Length", "1")
	h2.s.quota.release(id)
	h2.mustCreate("carol", 50, nil)
	resp = h2.do("carol", http.MethodPatch, loc, strings.NewReader("x"),
		"Content-Type", "application/offset+octet-stream", "Upload-Offset", "0", "Upload-Length", "60")
	wantRefused(t, resp, http.StatusForbidden, "ERR_QUOTA_EXCEEDED")
	if _, err := os.Stat(h2.files().infoPath(id)); !os.IsNotExist(err) {
		t.Errorf("upload over quota still there: %v", err)
	}
	if got := eventField(h2.pub.waitEvent(t, id, "upload.failed"), "reason"); got != "quota exceeded" {
		t.Errorf("upload.failed reason %q", got)
	}
	if n, b := h2.s.quota.usageOf("carol"); n != 1 || b != 50 {
		t.Errorf("carol's usage = %d uploads, %d bytes; want 1, 50", n, b)
	}
}

func TestMaxSize(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.MaxSize = 1000 }, nil)
	wantRefused(t, h.create("alice", 1001, nil), http.StatusRequestEntityTooLarge, "ERR_MAX_SIZE_EXCEEDED")
	resp := h.do("alice", http.MethodOptions, basePath, nil)
	if resp.Header.Get("Tus-Max-Size") != "1000" {
		t.Errorf("Tus-Max-Size = %q", resp.Header.Get("Tus-Max-Size"))
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("tusd answered CORS; the server has its own layer")
	}
}

func TestFiletypeAtCreation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.AllowedTypes = []string{"image/*", "application/pdf"} }, nil)
	tests := []struct {
		name   string
		meta   map[string]string
		hdr    []string
		status int
	}{
		{"image", map[string]string{"filetype": "image/png"}, nil, http.StatusCreated},
		{"pdf with parameters", map[string]string{"filetype": "application/PDF; x=y"}, nil, http.StatusCreated},
		{"uppy's key", map[string]string{"type": "image/jpeg"}, nil, http.StatusCreated},
		{"zip", map[string]string{"filetype": "application/zip"}, nil, http.StatusUnsupportedMediaType},
		{"prefix is not a match", map[string]string{"filetype": "imagex/png"}, nil, http.StatusUnsupportedMediaType},
		{"missing", nil, nil, http.StatusUnsupportedMediaType},
		// Partials carry no metadata; their final upload is checked.
		{"partial", nil, []string{"Upload-Concat", "partial"}, http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			resp := h.create("u-"+strings.ReplaceAll(tt.name, " ", "-"), 10, tt.meta, tt.hdr...)
			if tt.status == http.StatusCreated {
				if resp.StatusCode != tt.status {
					t.Errorf("got %d %s", resp.StatusCode, readBody(resp))
				}
				return
			}
			wantRefused(t, resp, tt.status, "ERR_FILETYPE_NOT_ALLOWED")
		})
	}
}

func TestSniffedType(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.AllowedTypes = []string{"image/*"} }, nil)
	png := map[string]string{"filetype": "image/png"}
	tests := []struct {
		name   string
		data   []byte
		chunks []int // ends of the PATCHes
		// refusedAt is the PATCH refused (-1: none).
		refusedAt int
	}{
		{"png", pngBytes(2000), []int{2000}, -1},
		{"png in small chunks", pngBytes(2000), []int{100, 300, 2000}, -1},
		{"short png", pngBytes(40), []int{10, 40}, -1},
		{"tiff", append([]byte("II*\x00"), randomBytes(600)...), []int{604}, -1},
		{"zip", zipBytes(2000), []int{2000}, 0},
		// The first PATCH is too short to judge; the second brings the
		// rest of the first 512 bytes and is refused.
		{"zip found by the second chunk", zipBytes(2000), []int{100, 2000}, 1},
		{"text", []byte(strings.Repeat("hello ", 20)), []int{120}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := h.with(t)
			loc, id := h.mustCreate("alice", len(tt.data), png)
			start := 0
			for i, end := range tt.chunks {
				resp := h.patch("alice", loc, start, tt.data[start:end])
				if i != tt.refusedAt {
					if resp.StatusCode != http.StatusNoContent {
						t.Fatalf("PATCH %d: %d %s", i, resp.StatusCode, readBody(resp))
					}
					start = end
					continue
				}
				wantRefused(t, resp, http.StatusUnsupportedMediaType, "ERR_CONTENT_NOT_ALLOWED")
				if resp := h.do("alice", http.MethodHead, loc, nil); resp.StatusCode != http.StatusNotFound {
					t.Errorf("HEAD after refusal: %d", resp.StatusCode)
				}
				for _, p := range []string{h.files().binPath(id), h.files().infoPath(id), h.files().sidePath(id, sideHash)} {
					if _, err := os.Stat(p); !os.IsNotExist(err) {
						t.Errorf("%s still there: %v", p, err)
					}
				}
				ps := h.pub.waitType(t, id, "upload.failed")
				if r := eventField(ps[len(ps)-1], "reason"); !strings.HasPrefix(r, "content type") {
					t.Errorf("reason %q", r)
				}
				return
			}
			h.pub.waitType(t, id, "upload.completed")
		})
	}
}

// TestTusdLogs checks that tusd's logger reaches the service's, its
// request chatter at debug level.
func TestTusdLogs(t *testing.T) {
	t.Parallel()
	var mu testproc.Output
	log := slog.New(slog.NewTextHandler(&mu, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Dir: t.TempDir()}, newFakePub(), nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodHead, "/nope", nil)
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	out := mu.String()
	if !strings.Contains(out, "level=DEBUG msg=RequestIncoming") || !strings.Contains(out, "component=tusd") {
		t.Errorf("log:\n%s", out)
	}
}

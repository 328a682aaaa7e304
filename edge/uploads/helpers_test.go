package uploads

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/uploads/process"
)

// waitTimeout bounds every wait on a condition in these tests.
const waitTimeout = 10 * time.Second

// fakePub records publications in order. Types in refuse fail instead,
// counted in refused.
type fakePub struct {
	mu      sync.Mutex
	pubs    []edge.Publication
	refuse  map[string]bool
	refused int
	changed chan struct{}
}

func newFakePub() *fakePub { return &fakePub{changed: make(chan struct{})} }

func (f *fakePub) Publish(_ context.Context, p edge.Publication) (edge.PublishResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		close(f.changed)
		f.changed = make(chan struct{})
	}()
	if f.refuse[p.Type] {
		f.refused++
		return edge.PublishResult{}, errors.New("fakePub: refused")
	}
	f.pubs = append(f.pubs, p)
	return edge.PublishResult{}, nil
}

// setRefuse makes publications of type typ fail, or succeed again.
func (f *fakePub) setRefuse(typ string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse == nil {
		f.refuse = map[string]bool{}
	}
	f.refuse[typ] = on
}

// waitRefused waits until n publications were refused.
func (f *fakePub) waitRefused(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		f.mu.Lock()
		ch, got := f.changed, f.refused
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d publications refused, want %d", got, n)
		}
	}
}

// of returns the publications about upload id, in order.
func (f *fakePub) of(id string) []edge.Publication {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []edge.Publication
	for _, p := range f.pubs {
		if eventField(p, "id") == id {
			out = append(out, p)
		}
	}
	return out
}

// waitType waits until upload id has an event of type typ and returns the
// upload's events.
func (f *fakePub) waitType(t *testing.T, id, typ string) []edge.Publication {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		ps := f.of(id)
		if slices.ContainsFunc(ps, func(p edge.Publication) bool { return p.Type == typ }) {
			return ps
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event for %s; got %v", typ, id, types(ps))
		}
	}
}

// waitEvent waits for upload id's first event of type typ and returns it.
func (f *fakePub) waitEvent(t *testing.T, id, typ string) edge.Publication {
	t.Helper()
	ps := f.waitType(t, id, typ)
	return ps[slices.IndexFunc(ps, func(p edge.Publication) bool { return p.Type == typ })]
}

// waitProgress waits until upload id has a progress event at offset, and
// reports whether it came. It may run outside the test's goroutine.
func (f *fakePub) waitProgress(id string, offset int) bool {
	deadline := time.After(waitTimeout)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		for _, p := range f.of(id) {
			if p.Type == "upload.progress" && eventField(p, "offset") == strconv.Itoa(offset) {
				return true
			}
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func types(ps []edge.Publication) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Type
	}
	return out
}

// eventField returns field k of an event's data as a string ("" if absent).
func eventField(p edge.Publication, k string) string {
	var m map[string]any
	if json.Unmarshal(p.Data, &m) != nil {
		return ""
	}
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatInt(int64(v), 10)
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// fakeProcs records jobs and answers each with answer, on its own
// goroutine as the real runner does. full makes Submit refuse.
type fakeProcs struct {
	mu     sync.Mutex
	jobs   []process.Job
	full   bool
	answer func(process.Job) (process.Result, error)
}

func (f *fakeProcs) Submit(j process.Job, done func(process.Job, process.Result, error)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return false
	}
	f.jobs = append(f.jobs, j)
	go func() {
		res, err := f.answer(j)
		done(j, res, err)
	}()
	return true
}

// harness is a Service behind an httptest server, with Run running. The
// X-User header stands in for authentication.
type harness struct {
	t      *testing.T
	s      *Service
	pub    *fakePub
	srv    *httptest.Server
	client *http.Client
}

const basePath = "/v1/uploads/"

// newHarness starts a harness; mod changes the config, tweak the Service
// before it serves.
func newHarness(t *testing.T, mod func(*Config), procs Processors, tweak ...func(*Service)) *harness {
	t.Helper()
	cfg := Config{Dir: t.TempDir(), BasePath: basePath, ProgressInterval: 10 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	pub := newFakePub()
	s, err := New(cfg, pub, nil, procs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Cleanups run last-in first-out: the server stops before Run, the
	// order the service asks for.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	tus := http.StripPrefix(basePath, s.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := r.Header.Get("X-User"); u != "" {
			r = r.WithContext(WithOwner(r.Context(), u))
		}
		tus.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// The server's own client: httptest closes http.DefaultTransport's idle
	// connections when any server closes, which would break requests of
	// tests running in parallel. The timeout turns a request that hangs
	// on an undrained channel into a failure.
	client := srv.Client()
	client.Timeout = waitTimeout
	return &harness{t: t, s: s, pub: pub, srv: srv, client: client}
}

// files returns the service's file backing; tests of what lies on disk
// use it.
func (h *harness) files() *fileBacking { return h.s.back.(*fileBacking) }

// with returns h reporting to t, for subtests sharing a harness.
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// do sends one tus request; hdr alternates names and values.
func (h *harness) do(user, method, url string, body io.Reader, hdr ...string) *http.Response {
	h.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = h.srv.URL + url
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if user != "" {
		req.Header.Set("X-User", user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// create POSTs a new upload and returns the response.
func (h *harness) create(user string, size int, meta map[string]string, hdr ...string) *http.Response {
	h.t.Helper()
	hdr = append(hdr, "Upload-Metadata", encodeMeta(meta))
	if size >= 0 {
		hdr = append(hdr, "Upload-Length", strconv.Itoa(size))
	}
	return h.do(user, http.MethodPost, basePath, nil, hdr...)
}

// mustCreate creates an upload and returns its URL and id.
func (h *harness) mustCreate(user string, size int, meta map[string]string, hdr ...string) (string, string) {
	h.t.Helper()
	resp := h.create(user, size, meta, hdr...)
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("create: %d %s", resp.StatusCode, readBody(resp))
	}
	loc := resp.Header.Get("Location")
	return loc, path.Base(loc)
}

// patch sends b at offset.
func (h *harness) patch(user, url string, offset int, b []byte) *http.Response {
	h.t.Helper()
	return h.do(user, http.MethodPatch, url, bytes.NewReader(b),
		"Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.Itoa(offset))
}

// mustPatch sends b at offset and expects 204.
func (h *harness) mustPatch(user, url string, offset int, b []byte) {
	h.t.Helper()
	if resp := h.patch(user, url, offset, b); resp.StatusCode != http.StatusNoContent {
		h.t.Fatalf("PATCH at %d: %d %s", offset, resp.StatusCode, readBody(resp))
	}
}

// upload creates an upload of data in one PATCH and returns its id.
func (h *harness) upload(user string, data []byte, meta map[string]string) string {
	h.t.Helper()
	loc, id := h.mustCreate(user, len(data), meta)
	h.mustPatch(user, loc, 0, data)
	return id
}

func encodeMeta(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func readBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pngBytes returns n bytes that sniff as image/png.
func pngBytes(n int) []byte {
	b := randomBytes(n)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

// zipBytes returns n bytes that sniff as application/zip.
func zipBytes(n int) []byte {
	b := randomBytes(n)
	copy(b, "PK\x03\x04")
	return b
}

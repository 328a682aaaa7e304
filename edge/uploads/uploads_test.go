package uploads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge"
)

func TestPlainUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	data := randomBytes(300_000)
	meta := map[string]string{"filename": "a.bin", "filetype": "application/octet-stream"}
	loc, id := h.mustCreate("alice", len(data), meta)
	for _, c := range [][2]int{{0, 100_000}, {100_000, 200_000}, {200_000, 300_000}} {
		h.mustPatch("alice", loc, c[0], data[c[0]:c[1]])
	}

	ps := h.pub.waitType(t, id, "upload.completed")
	if ps[0].Type != "upload.created" || ps[len(ps)-1].Type != "upload.completed" {
		t.Fatalf("events %v: want created first and completed last", types(ps))
	}
	last := -1
	for _, p := range ps[1 : len(ps)-1] {
		off, _ := strconv.Atoi(eventField(p, "offset"))
		if p.Type != "upload.progress" || !p.Ephemeral || off <= last {
			t.Fatalf("events %v: want ephemeral progress with rising offsets between, got %s at %d", types(ps), p.Type, off)
		}
		last = off
	}
	if last != len(data) {
		t.Errorf("last progress offset = %d, want %d", last, len(data))
	}
	for _, p := range ps {
		if p.Topic != "user:alice" {
			t.Errorf("%s went to %q", p.Type, p.Topic)
		}
	}
	done := ps[len(ps)-1]
	sum := sha256.Sum256(data)
	if got := eventField(done, "sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 = %s, want %x", got, sum)
	}
	if done.Ephemeral || done.IdempotencyKey != "upload.completed:"+id {
		t.Errorf("completed: ephemeral %v key %q", done.Ephemeral, done.IdempotencyKey)
	}
	if eventField(done, "size") != "300000" || eventField(done, "filename") != "a.bin" ||
		eventField(done, "filetype") != "application/octet-stream" {
		t.Errorf("completed data %s", done.Data)
	}

	m := h.s.Metrics().Snapshot()
	// The saved state covered every chunk: the file was never read back.
	if m.HashFallbackBytes != 0 || m.Created != 1 || m.Completed != 1 || m.BytesReceived != uint64(len(data)) {
		t.Errorf("metrics %+v", m)
	}
	if owner, err := h.s.Owner(t.Context(), id); owner != "alice" || err != nil {
		t.Errorf("Owner = %q, %v", owner, err)
	}
	if resp := h.do("alice", http.MethodHead, loc, nil); resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Upload-Offset") != "300000" {
		t.Errorf("HEAD: %d offset %s", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	// Someone else's request finds nothing, whatever the HTTP layer did.
	for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodDelete} {
		if resp := h.do("bob", method, loc, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s by another user: %d", method, resp.StatusCode)
		}
	}
	if resp := h.patch("bob", loc, len(data), []byte("x")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH by another user: %d", resp.StatusCode)
	}
}

func TestHashStateFallback(t *testing.T) {
	t.Parallel()
	const size, c1, c2 = 90_000, 30_000, 60_000
	tests := []struct {
		name string
		// meddle changes the state file between the second chunk and the
		// third; saved is its content after the first chunk.
		meddle       func(t *testing.T, file string, saved []byte)
		fallbackRead uint64
	}{
		{
			name: "removed",
			meddle: func(t *testing.T, file string, _ []byte) {
				if err := os.Remove(file); err != nil {
					t.Fatal(err)
				}
			},
			fallbackRead: size,
		},
		{
			// As if a node crashed after writing the second chunk and
			// before saving its state: only the rest is read.
			name: "behind",
			meddle: func(t *testing.T, file string, saved []byte) {
				if err := os.WriteFile(file, saved, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			fallbackRead: size - c1,
		},
		{
			name:         "corrupt",
			meddle:       func(t *testing.T, file string, _ []byte) { os.WriteFile(file, []byte("nonsense"), 0o600) },
			fallbackRead: size,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil, nil)
			data := randomBytes(size)
			loc, id := h.mustCreate("alice", size, nil)
			h.mustPatch("alice", loc, 0, data[:c1])
			file := h.files().sidePath(id, sideHash)
			saved, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			h.mustPatch("alice", loc, c1, data[c1:c2])
			tt.meddle(t, file, saved)
			h.mustPatch("alice", loc, c2, data[c2:])

			ps := h.pub.waitType(t, id, "upload.completed")
			sum := sha256.Sum256(data)
			if got := eventField(ps[len(ps)-1], "sha256"); got != hex.EncodeToString(sum[:]) {
				t.Errorf("sha256 = %s, want %x", got, sum)
			}
			if got := h.s.Metrics().Snapshot().HashFallbackBytes; got != tt.fallbackRead {
				t.Errorf("bytes read to hash = %d, want %d", got, tt.fallbackRead)
			}
		})
	}
}

// TestHashCheckpoint checks that a long PATCH saves the hash state as it
// goes, so that a node dying in the middle leaves a state to resume from.
func TestHashCheckpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil, func(s *Service) { s.checkpoint = 1000 })
	data := randomBytes(5000)
	loc, id := h.mustCreate("alice", len(data), nil)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPatch, loc, pr)
	req.Header = http.Header{"Tus-Resumable": {"1.0.0"}, "X-User": {"alice"},
		"Content-Type": {"application/offset+octet-stream"}, "Upload-Offset": {"0"}}
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := h.client.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()

	// The second piece is read only after the first was (tusd reported
	// it), so the tee sees two writes and saves between them.
	pw.Write(data[:1500])
	if !h.pub.waitProgress(id, 1500) {
		t.Fatal("no progress at 1500")
	}
	pw.Write(data[1500:3000])
	deadline := time.Now().Add(waitTimeout)
	for {
		st, ok := h.s.loadState(t.Context(), id)
		covered := st.covered
		if ok && covered == 1500 {
			if want := sha256.Sum256(data[:1500]); string(st.h.Sum(nil)) != string(want[:]) {
				t.Error("the saved state is not the hash of the bytes it covers")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state saved within the PATCH (ok %v, covered %d)", ok, covered)
		}
		time.Sleep(5 * time.Millisecond) // polling a file: there is nothing to wait on
	}
	pw.Write(data[3000:])
	pw.Close()
	if r := <-res; r.err != nil || r.status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %v", r.status, r.err)
	}
	ps := h.pub.waitType(t, id, "upload.completed")
	if sum := sha256.Sum256(data); eventField(ps[len(ps)-1], "sha256") != hex.EncodeToString(sum[:]) {
		t.Error("wrong sha256")
	}
	if got := h.s.Metrics().Snapshot().HashFallbackBytes; got != 0 {
		t.Errorf("bytes read to hash = %d", got)
	}
}

func TestChecksumMetadata(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	data := randomBytes(10_000)
	sum := sha256.Sum256(data)

	t.Run("match", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		id := h.upload("alice", data, map[string]string{"sha256": strings.ToUpper(hex.EncodeToString(sum[:]))})
		h.pub.waitType(t, id, "upload.completed")
	})
	t.Run("mismatch", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		wrong := sha256.Sum256([]byte("something else"))
		loc, id := h.mustCreate("alice", len(data), map[string]string{"sha256": hex.EncodeToString(wrong[:])})
		h.mustPatch("alice", loc, 0, data[:5000])
		resp := h.patch("alice", loc, 5000, data[5000:])
		if body := readBody(resp); resp.StatusCode != 460 || !strings.Contains(body, "ERR_CHECKSUM_MISMATCH") {
			t.Fatalf("final PATCH: %d %s", resp.StatusCode, body)
		}
		ps := h.pub.waitType(t, id, "upload.failed")
		if got := eventField(ps[len(ps)-1], "reason"); got != "checksum mismatch" {
			t.Errorf("reason = %q", got)
		}
		for _, p := range ps {
			if p.Type == "upload.completed" {
				t.Errorf("completed published for a mismatch")
			}
		}
		kept, err := os.ReadFile(filepath.Join(h.s.cfg.Dir, quarantineDir, id))
		if err != nil || string(kept) != string(data) {
			t.Errorf("quarantined data: %d bytes, %v", len(kept), err)
		}
		if _, err := os.Stat(filepath.Join(h.s.cfg.Dir, quarantineDir, id+".info")); err != nil {
			t.Errorf("quarantined info: %v", err)
		}
		if resp := h.do("alice", http.MethodHead, loc, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("HEAD after mismatch: %d", resp.StatusCode)
		}
		if _, err := h.s.Owner(t.Context(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Owner after mismatch: %v", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		resp := h.create("alice", 10, map[string]string{"sha256": "abc"})
		if body := readBody(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "ERR_INVALID_CHECKSUM") {
			t.Errorf("create: %d %s", resp.StatusCode, body)
		}
	})
}

func TestOwnership(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)

	resp := h.create("", 10, nil)
	if body := readBody(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "ERR_UNAUTHENTICATED") {
		t.Errorf("create without owner: %d %s", resp.StatusCode, body)
	}
	// A client cannot name another owner through metadata.
	_, id := h.mustCreate("alice", 10, map[string]string{OwnerKey: "bob"})
	if owner, err := h.s.Owner(t.Context(), id); owner != "alice" || err != nil {
		t.Errorf("Owner = %q, %v", owner, err)
	}
	for _, bad := range []string{"", "nope", "../" + id, id + "/x", strings.ToUpper(id)} {
		if _, err := h.s.Owner(t.Context(), bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Owner(%q): %v, want ErrNotFound", bad, err)
		}
		if _, err := h.s.Text(t.Context(), bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Text(%q): %v, want ErrNotFound", bad, err)
		}
	}
	if resp := h.do("alice", http.MethodHead, basePath+"quarantine%2F"+id, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a path that is not an id: %d", resp.StatusCode)
	}
}

// TestRunDrainsAll goes through every notification tusd sends: each
// request would hang (and the client's timeout fail the test) if its
// channel were not read.
func TestRunDrainsAll(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)

	// Progress while a PATCH is running: the body arrives in two pieces,
	// the second only once the first was reported.
	data := randomBytes(20_000)
	loc, id := h.mustCreate("alice", len(data), nil)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:8000])
		if !h.pub.waitProgress(id, 8000) {
			pw.CloseWithError(errors.New("no progress event during the PATCH"))
			return
		}
		pw.Write(data[8000:])
		pw.Close()
	}()
	resp := h.do("alice", http.MethodPatch, loc, pr,
		"Content-Type", "application/offset+octet-stream", "Upload-Offset", "0")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, readBody(resp))
	}
	h.pub.waitType(t, id, "upload.completed")

	// Creation with upload, and termination.
	resp = h.do("alice", http.MethodPost, basePath, strings.NewReader("hello"),
		"Upload-Length", "10", "Content-Type", "application/offset+octet-stream")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Upload-Offset") != "5" {
		t.Fatalf("creation with upload: %d offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	loc2 := resp.Header.Get("Location")
	if resp := h.do("alice", http.MethodDelete, loc2, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, readBody(resp))
	}
	if n, _ := h.s.quota.usageOf("alice"); n != 0 {
		t.Errorf("unfinished uploads after DELETE = %d", n)
	}

	// Deferred length, declared with the last PATCH.
	loc3, id3 := h.mustCreate("alice", -1, nil, "Upload-Defer-Length", "1")
	resp = h.do("alice", http.MethodPatch, loc3, strings.NewReader("abc"),
		"Content-Type", "application/offset+octet-stream", "Upload-Offset", "0", "Upload-Length", "3")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH with length: %d %s", resp.StatusCode, readBody(resp))
	}
	h.pub.waitType(t, id3, "upload.completed")

	// An empty upload completes at creation.
	_, id4 := h.mustCreate("alice", 0, nil)
	ps := h.pub.waitType(t, id4, "upload.completed")
	empty := sha256.Sum256(nil)
	if got := eventField(ps[len(ps)-1], "sha256"); got != hex.EncodeToString(empty[:]) {
		t.Errorf("sha256 of an empty upload = %s", got)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Dir: t.TempDir()}, newFakePub(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- s.Run(ctx) }()
	}
	// The one that lost returns at once; the other runs until cancel.
	if err := <-errs; !errors.Is(err, errRunTwice) {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}, newFakePub(), nil, nil, nil); err == nil {
		t.Error("New without Dir succeeded")
	}
	if _, err := New(Config{Dir: t.TempDir(), AllowedTypes: []string{"image"}}, newFakePub(), nil, nil, nil); err == nil {
		t.Error("New with a bad type pattern succeeded")
	}
	if _, err := New(Config{Dir: t.TempDir()}, nil, nil, nil, nil); err == nil {
		t.Error("New without a Publisher succeeded")
	}
	s, err := New(Config{Dir: t.TempDir(), BasePath: "/up"}, newFakePub(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.BasePath != "/up/" || s.cfg.MaxSize != DefaultMaxSize || s.cfg.ExpireAfter != DefaultExpireAfter {
		t.Errorf("defaults: %+v", s.cfg)
	}
}

var _ Publisher = edge.Broker(nil)

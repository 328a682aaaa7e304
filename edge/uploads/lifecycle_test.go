package uploads

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tus/tusd/v2/pkg/handler"
)

func TestConcatenation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.AllowedTypes = []string{"image/*"} }, nil)
	meta := map[string]string{"filename": "p.png", "filetype": "image/png"}
	// partials uploads the halves of data as alice and returns the
	// Upload-Concat header of a final upload made of them.
	partials := func(h *harness, data []byte) (string, []string) {
		var ids []string
		for _, part := range [][]byte{data[:20_000], data[20_000:]} {
			loc, id := h.mustCreate("alice", len(part), nil, "Upload-Concat", "partial")
			h.mustPatch("alice", loc, 0, part)
			ids = append(ids, id)
		}
		return "final;" + basePath + ids[0] + " " + h.srv.URL + basePath + ids[1], ids
	}

	t.Run("final", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		data := pngBytes(50_000)
		concat, parts := partials(h, data)
		resp := h.create("alice", -1, meta, "Upload-Concat", concat)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("final: %d %s", resp.StatusCode, readBody(resp))
		}
		id := resp.Header.Get("Location")[len(h.srv.URL+basePath):]
		ps := h.pub.waitType(t, id, "upload.completed")
		sum := sha256.Sum256(data)
		done := ps[len(ps)-1]
		if got := eventField(done, "sha256"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("sha256 = %s, want %x", got, sum)
		}
		if eventField(done, "size") != "50000" || eventField(done, "filename") != "p.png" || ps[0].Type != "upload.created" {
			t.Errorf("events %v, completed %s", types(ps), done.Data)
		}
		for _, p := range parts {
			if got := h.pub.of(p); len(got) != 0 {
				t.Errorf("partial %s published %v", p, types(got))
			}
		}
		// Hashed while the partials were copied: nothing read again.
		if got := h.s.Metrics().Snapshot().HashFallbackBytes; got != 0 {
			t.Errorf("bytes read to hash = %d", got)
		}
	})
	t.Run("someone else's partials", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		concat, _ := partials(h, pngBytes(30_000))
		resp := h.create("bob", -1, meta, "Upload-Concat", concat)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("final by another user: %d %s", resp.StatusCode, readBody(resp))
		}
	})
	t.Run("content not allowed", func(t *testing.T) {
		t.Parallel()
		h := h.with(t)
		concat, _ := partials(h, zipBytes(30_000))
		resp := h.create("alice", -1, meta, "Upload-Concat", concat)
		wantRefused(t, resp, http.StatusUnsupportedMediaType, "ERR_CONTENT_NOT_ALLOWED")
	})
}

func TestJanitor(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ExpireAfter = time.Hour }, nil)
	staleLoc, stale := h.mustCreate("alice", 100, nil)
	h.mustPatch("alice", staleLoc, 0, randomBytes(50))
	done := h.upload("alice", randomBytes(10), nil)
	_, young := h.mustCreate("alice", 10, nil)
	partLoc, part := h.mustCreate("alice", 5, nil, "Upload-Concat", "partial")
	h.mustPatch("alice", partLoc, 0, randomBytes(5))
	orphan := h.files().sidePath(newID(), sideHash)
	if err := os.WriteFile(orphan, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	past := time.Now().Add(-2 * time.Hour)
	for _, id := range []string{stale, done, part} {
		for _, p := range []string{h.files().binPath(id), h.files().infoPath(id)} {
			if err := os.Chtimes(p, past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Chtimes(orphan, past, past)
	h.s.sweep(t.Context(), time.Now())

	gone := func(id string) bool {
		_, err := os.Stat(h.files().infoPath(id))
		return os.IsNotExist(err)
	}
	if !gone(stale) || !gone(part) {
		t.Error("expired uploads are still there")
	}
	for _, p := range []string{h.files().binPath(stale), h.files().sidePath(stale, sideHash), orphan} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if gone(done) || gone(young) {
		t.Error("a finished or young upload was removed")
	}
	if got := h.s.Metrics().Snapshot().Expired; got != 2 {
		t.Errorf("expired = %d, want 2", got)
	}
	if n, b := h.s.quota.usageOf("alice"); n != 1 || b != 10 {
		t.Errorf("alice's usage = %d uploads, %d bytes; want the young one", n, b)
	}
}

// A completion the broker never took (or a node that died before
// publishing it) is announced by the janitor once announceGrace has
// passed; an announced one is marked and not repeated.
func TestLostCompletionAnnounced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ExpireAfter = time.Hour }, nil)
	h.pub.setRefuse("upload.completed", true)
	data := randomBytes(1000)
	id := h.upload("alice", data, nil)
	h.pub.waitRefused(t, publishAttempts)
	marker := h.files().sidePath(id, sideDone)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker written for an unpublished completion: %v", err)
	}
	h.pub.setRefuse("upload.completed", false)

	// Within the grace the janitor leaves it to the node finishing it.
	h.s.sweep(t.Context(), time.Now())
	if n := h.s.Metrics().Snapshot().Recovered; n != 0 {
		t.Fatalf("announced %d within the grace", n)
	}
	h.s.sweep(t.Context(), time.Now().Add(2*announceGrace))
	done := h.pub.waitEvent(t, id, "upload.completed")
	if want := sha256.Sum256(data); eventField(done, "sha256") != hex.EncodeToString(want[:]) || done.IdempotencyKey != "upload.completed:"+id {
		t.Errorf("recovered completion: %s key %q", done.Data, done.IdempotencyKey)
	}
	deadline := time.Now().Add(waitTimeout)
	for _, err := os.Stat(marker); err != nil; _, err = os.Stat(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("no marker after the recovered completion: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling a file: there is nothing to wait on
	}
	h.s.sweep(t.Context(), time.Now().Add(2*announceGrace))
	if n := h.s.Metrics().Snapshot().Recovered; n != 1 {
		t.Errorf("recovered = %d, want 1", n)
	}
}

// A finished upload the janitor finds unannounced is checked against its
// sha256 metadata like any other: on a mismatch it is failed and
// quarantined, never announced as completed.
func TestLostCompletionChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ExpireAfter = time.Hour }, nil)
	data := randomBytes(100)
	id := newID()
	info := handler.FileInfo{
		ID: id, Size: int64(len(data)), Offset: int64(len(data)),
		MetaData: handler.MetaData{OwnerKey: "alice", "sha256": strings.Repeat("ab", 32)},
		Storage:  map[string]string{"Type": "filestore", "Path": h.files().binPath(id)},
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(h.files().infoPath(id), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.files().binPath(id), data, 0o600); err != nil {
		t.Fatal(err)
	}

	h.s.sweep(t.Context(), time.Now().Add(2*announceGrace))
	failed := h.pub.waitEvent(t, id, "upload.failed")
	if got := eventField(failed, "reason"); got != "checksum mismatch" {
		t.Errorf("reason %q", got)
	}
	if types := types(h.pub.of(id)); slices.Contains(types, "upload.completed") {
		t.Errorf("events %v", types)
	}
	if _, err := os.Stat(filepath.Join(h.files().dir, quarantineDir, id)); err != nil {
		t.Errorf("not quarantined: %v", err)
	}
}

// The janitor releases the quota claim of an upload that is gone, not of
// one it could not read this time.
func TestJanitorKeepsClaimsOfUnreadable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, nil)
	_, id := h.mustCreate("alice", 100, nil)
	if err := os.WriteFile(h.files().infoPath(id), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * claimGrace)
	h.s.sweep(t.Context(), later)
	if n, _ := h.s.quota.usageOf("alice"); n != 1 {
		t.Fatalf("claim of an unreadable upload dropped (%d counted)", n)
	}
	if err := os.Remove(h.files().infoPath(id)); err != nil {
		t.Fatal(err)
	}
	h.s.sweep(t.Context(), later)
	if n, _ := h.s.quota.usageOf("alice"); n != 0 {
		t.Errorf("claim of a removed upload kept (%d counted)", n)
	}
}

func TestProcessing(t *testing.T) {
	t.Parallel()
	meta := map[string]string{"filename": "scan.png", "filetype": "image/png"}
	data := pngBytes(1000)

	t.Run("processed", func(t *testing.T) {
		t.Parallel()
		procs := &fakeProcs{answer: func(process.Job) (process.Result, error) {
			return process.Result{Processor: "ocr", Text: "hello world"}, nil
		}}
		h := newHarness(t, nil, procs)
		id := h.upload("alice", data, meta)
		ps := h.pub.waitType(t, id, "upload.processed")
		if got := types(ps); got[len(got)-2] != "upload.completed" {
			t.Errorf("events %v: processed must follow completed", got)
		}
		p := ps[len(ps)-1]
		if eventField(p, "processor") != "ocr" || eventField(p, "textUrl") != basePath+id+"/text" ||
			p.IdempotencyKey != "upload.processed:"+id+":ocr" {
			t.Errorf("processed: %s key %q", p.Data, p.IdempotencyKey)
		}
		if text, err := h.s.Text(t.Context(), id); text != "hello world" || err != nil {
			t.Errorf("Text = %q, %v", text, err)
		}
		want := process.Job{ID: id, Owner: "alice", Path: h.files().binPath(id), Filename: "scan.png", Filetype: "image/png", Size: 1000}
		procs.mu.Lock()
		job := procs.jobs[0]
		procs.mu.Unlock()
		if job.Fetch != nil {
			t.Error("a job on the file store has a Fetch")
		}
		if !reflect.DeepEqual(job, want) {
			t.Errorf("job %+v, want %+v", job, want)
		}
		// Deleting the upload deletes its text.
		if resp := h.do("alice", http.MethodDelete, basePath+id, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE: %d", resp.StatusCode)
		}
		if _, err := h.s.Text(t.Context(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Text after DELETE: %v", err)
		}
	})
	for _, tt := range []struct {
		name   string
		procs  *fakeProcs
		reason string
	}{
		{"busy", &fakeProcs{full: true}, "busy"},
		{"error", &fakeProcs{answer: func(process.Job) (process.Result, error) {
			return process.Result{Processor: "ocr"}, errors.New("tesseract: exit status 1")
		}}, "processing failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil, tt.procs)
			id := h.upload("alice", data, meta)
			ps := h.pub.waitType(t, id, "upload.failed")
			if got := eventField(ps[len(ps)-1], "reason"); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if _, err := h.s.Text(t.Context(), id); !errors.Is(err, ErrNotProcessed) {
				t.Errorf("Text: %v, want ErrNotProcessed", err)
			}
		})
	}
}

// TestProgressThrottle drives one shard's handling with a fake clock.
func TestProgressThrottle(t *testing.T) {
	t.Parallel()
	pub := newFakePub()
	s, err := New(Config{Dir: t.TempDir(), ProgressInterval: 250 * time.Millisecond}, pub, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	id := newID()
	if err := os.WriteFile(s.back.(*fileBacking).binPath(id), randomBytes(100), 0o600); err != nil {
		t.Fatal(err)
	}
	info := handler.FileInfo{ID: id, Size: 100, MetaData: handler.MetaData{OwnerKey: "alice"}}
	seen := make(map[string]*progress)
	step := func(kind taskKind, offset int64, after time.Duration) {
		now = now.Add(after)
		info.Offset = offset
		s.handle(t.Context(), task{kind: kind, info: info}, seen)
	}
	step(taskProgress, 10, 0)
	step(taskProgress, 20, 100*time.Millisecond) // too soon
	step(taskProgress, 30, 200*time.Millisecond)
	step(taskProgress, 30, time.Second) // no news
	step(taskProgress, 60, time.Second)
	step(taskCompleted, 100, time.Millisecond) // with the one at the end
	step(taskProgress, 100, 10*time.Second)    // tusd's late one

	var got []string
	for _, p := range pub.of(id) {
		got = append(got, p.Type+"@"+eventField(p, "offset"))
	}
	want := []string{"upload.progress@10", "upload.progress@30", "upload.progress@60", "upload.progress@100", "upload.completed@"}
	if !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

func TestMetricsRegister(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.MaxConcurrentPerUser = 1 }, nil)
	h.mustCreate("alice", 1, nil)
	h.create("alice", 1, nil)
	reg := prometheus.NewRegistry()
	if err := h.s.Metrics().Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			v := strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64)
			for _, l := range m.GetLabel() {
				v = l.GetValue() + "=" + v
			}
			found[f.GetName()] = v
		}
	}
	if found["edge_uploads_created_total"] != "1" || found["edge_upload_refusals_total"] != "ERR_TOO_MANY_UPLOADS=1" {
		t.Errorf("gathered %v", found)
	}
}

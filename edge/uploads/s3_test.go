package uploads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/edge-rt/edge/internal/s3test"
	"github.com/tus/tusd/v2/pkg/handler"
)

// The S3 store against a real S3 server (versitygw over a directory): what
// the service adds to tusd's s3store, each through tus requests. The
// bucket's directory shows what S3 holds: <root>/<bucket>/<prefix><key>.

// s3Harness is a harness on the S3 store of srv, under prefix "up/".
func s3Harness(t *testing.T, srv *s3test.Server, mod func(*Config), procs Processors) *harness {
	t.Helper()
	return newHarness(t, func(c *Config) {
		c.S3 = S3Config{
			Bucket: srv.Bucket, Prefix: "up", Endpoint: srv.Endpoint, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		}
		if mod != nil {
			mod(c)
		}
	}, procs)
}

// object returns the path of key (under the prefix) in srv's directory.
func object(srv *s3test.Server, key string) string {
	return filepath.Join(srv.Root, srv.Bucket, "up", key)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestS3Upload(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, nil, nil)
	// Larger than S3's 5 MiB minimum part, so the first PATCH leaves a
	// part and a short rest; the second PATCH continues from both.
	data := randomBytes(7<<20 + 123)
	sum := sha256.Sum256(data)
	loc, id := h.mustCreate("alice", len(data), map[string]string{"filename": "a.bin", "sha256": hex.EncodeToString(sum[:])})
	if !strings.Contains(id, "+") || !h.s.back.validID(id) {
		t.Fatalf("id %q is not an S3 upload id", id)
	}
	h.mustPatch("alice", loc, 0, data[:6<<20])
	h.mustPatch("alice", loc, 6<<20, data[6<<20:])

	done := h.pub.waitEvent(t, id, "upload.completed")
	if got := eventField(done, "sha256"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s, want %x", got, sum)
	}
	// Each chunk resumed the state the one before saved in the bucket.
	if n := h.s.Metrics().Snapshot().HashFallbackBytes; n != 0 {
		t.Errorf("read %d bytes again to hash", n)
	}
	got, err := os.ReadFile(object(srv, baseID(id)))
	if err != nil || string(got) != string(data) {
		t.Fatalf("the object does not hold the upload (%v)", err)
	}
	resp := h.do("alice", http.MethodGet, loc, nil)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != string(data) {
		t.Errorf("GET: %d, %d bytes", resp.StatusCode, len(b))
	}
	// The owner is checked on S3 too, and a made-up multipart half of the
	// id is not the upload.
	if resp := h.do("bob", http.MethodHead, loc, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user's HEAD: %d", resp.StatusCode)
	}
	fake := basePath + baseID(id) + "+madeup"
	if resp := h.do("alice", http.MethodHead, fake, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of %s: %d", fake, resp.StatusCode)
	}
	if _, err := h.s.Owner(t.Context(), baseID(id)+"+madeup"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Owner of a made-up id: %v", err)
	}
}

// The first bytes of an upload sent a few at a time are checked once all
// 512 are there; on S3 the bytes before come from the saved state, since
// an unfinished upload cannot be read back.
func TestS3SniffTinyChunks(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, func(c *Config) { c.AllowedTypes = []string{"image/png"} }, nil)
	meta := map[string]string{"filetype": "image/png"}

	png := pngBytes(2000)
	loc, id := h.mustCreate("alice", len(png), meta)
	h.mustPatch("alice", loc, 0, png[:100])
	h.mustPatch("alice", loc, 100, png[100:300])
	h.mustPatch("alice", loc, 300, png[300:])
	h.pub.waitType(t, id, "upload.completed")

	// Without the state (its save failed), the bytes come from tusd's
	// short part.
	png = pngBytes(2000)
	loc, id = h.mustCreate("alice", len(png), meta)
	h.mustPatch("alice", loc, 0, png[:100])
	if err := os.Remove(object(srv, baseID(id)+".sha256")); err != nil {
		t.Fatal(err)
	}
	h.mustPatch("alice", loc, 100, png[100:])
	h.pub.waitType(t, id, "upload.completed")

	zip := zipBytes(2000)
	loc, id = h.mustCreate("alice", len(zip), meta)
	h.mustPatch("alice", loc, 0, zip[:100])
	if resp := h.patch("alice", loc, 100, zip[100:]); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("PATCH of a zip: %d %s", resp.StatusCode, readBody(resp))
	}
	if exists(object(srv, baseID(id)+".info")) {
		t.Error("the refused upload's .info is still in the bucket")
	}
}

func TestS3ChecksumQuarantine(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, func(c *Config) { c.QuarantineFor = time.Hour }, nil)
	data := randomBytes(1000)
	loc, id := h.mustCreate("alice", len(data), map[string]string{"sha256": strings.Repeat("ab", 32)})
	if resp := h.patch("alice", loc, 0, data); resp.StatusCode != 460 {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, readBody(resp))
	}
	h.pub.waitType(t, id, "upload.failed")
	oid := baseID(id)
	if got, err := os.ReadFile(object(srv, "quarantine/"+oid)); err != nil || string(got) != string(data) {
		t.Fatalf("quarantined data: %v", err)
	}
	if !exists(object(srv, "quarantine/"+oid+".info")) {
		t.Error("no quarantined .info")
	}
	if exists(object(srv, oid)) || exists(object(srv, oid+".info")) {
		t.Error("the upload is still in place")
	}
	if resp := h.do("alice", http.MethodHead, loc, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD after quarantine: %d", resp.StatusCode)
	}

	// Kept for QuarantineFor, then swept.
	h.s.sweepLeftovers(t.Context(), time.Now())
	if !exists(object(srv, "quarantine/"+oid)) {
		t.Fatal("quarantine removed early")
	}
	h.s.sweepLeftovers(t.Context(), time.Now().Add(2*time.Hour))
	if exists(object(srv, "quarantine/"+oid)) || exists(object(srv, "quarantine/"+oid+".info")) {
		t.Error("quarantine kept past QuarantineFor")
	}
	if n := h.s.Metrics().Snapshot().LeftoversRemoved; n != 2 {
		t.Errorf("leftovers removed = %d, want 2", n)
	}
}

func TestS3ConcatAndTerminate(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, nil, nil)
	data := randomBytes(3000)
	locA, _ := h.mustCreate("alice", 1000, nil, "Upload-Concat", "partial")
	locB, _ := h.mustCreate("alice", 2000, nil, "Upload-Concat", "partial")
	h.mustPatch("alice", locA, 0, data[:1000])
	h.mustPatch("alice", locB, 0, data[1000:])
	resp := h.do("alice", http.MethodPost, basePath, nil, "Upload-Concat", "final;"+locA+" "+locB)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("final: %d %s", resp.StatusCode, readBody(resp))
	}
	finalLoc := resp.Header.Get("Location")
	final := filepathBase(finalLoc)
	done := h.pub.waitEvent(t, final, "upload.completed")
	if want := sha256.Sum256(data); eventField(done, "sha256") != hex.EncodeToString(want[:]) {
		t.Errorf("final sha256 %s", eventField(done, "sha256"))
	}
	// The final upload is an object of its own, finished by the service:
	// tusd does not call FinishUpload after a concatenation.
	if got, err := os.ReadFile(object(srv, baseID(final))); err != nil || string(got) != string(data) {
		t.Errorf("the final upload's object: %v", err)
	}
	get := h.do("alice", http.MethodGet, finalLoc, nil)
	if b, _ := io.ReadAll(get.Body); get.StatusCode != http.StatusOK || string(b) != string(data) {
		t.Errorf("GET of the final upload: %d, %d bytes", get.StatusCode, len(b))
	}

	// DELETE of an unfinished upload aborts its multipart upload and
	// removes its objects, side objects included.
	loc, id := h.mustCreate("alice", 100, nil)
	h.mustPatch("alice", loc, 0, randomBytes(50))
	if !exists(object(srv, baseID(id)+".sha256")) {
		t.Fatal("no hash state saved in the bucket")
	}
	if resp := h.do("alice", http.MethodDelete, loc, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, readBody(resp))
	}
	for _, key := range []string{baseID(id) + ".info", baseID(id) + ".part", baseID(id) + ".sha256"} {
		if exists(object(srv, key)) {
			t.Errorf("%s still in the bucket", key)
		}
	}
	if n, _ := h.s.quota.usageOf("alice"); n != 0 {
		t.Errorf("alice still has %d unfinished uploads counted", n)
	}
}

func filepathBase(loc string) string { return loc[strings.LastIndex(loc, "/")+1:] }

// Processors get a local copy of an S3 upload, fetched on the runner's
// worker and removed afterwards; their text is kept in the bucket.
func TestS3Processing(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	runner := process.NewRunner([]process.Processor{echoProcessor{}}, process.RunnerOptions{Concurrency: 1})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { runner.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	var tmp string
	h := s3Harness(t, srv, func(c *Config) { tmp = c.Dir }, runner)

	id := h.upload("alice", []byte("some words"), map[string]string{"filetype": "text/plain"})
	h.pub.waitType(t, id, "upload.processed")
	if text, err := h.s.Text(t.Context(), id); text != "some words" || err != nil {
		t.Errorf("Text = %q, %v", text, err)
	}
	if !exists(object(srv, "text/"+baseID(id)+".txt")) {
		t.Error("no text object in the bucket")
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".processing") {
			t.Errorf("local copy %s left behind", e.Name())
		}
	}

	// What a crash would leave in the local directory goes with the
	// janitor, once old; other files there are not its business.
	for _, name := range []string{"tusd-s3-tmp-123", baseID(id) + ".42.processing", "keep.me"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.s.sweepLeftovers(t.Context(), time.Now().Add(2*DefaultExpireAfter))
	for name, want := range map[string]bool{"tusd-s3-tmp-123": false, baseID(id) + ".42.processing": false, "keep.me": true} {
		if exists(filepath.Join(tmp, name)) != want {
			t.Errorf("%s there: %v, want %v", name, !want, want)
		}
	}
}

// echoProcessor makes the file's content its text.
type echoProcessor struct{}

func (echoProcessor) Name() string { return "echo" }
func (echoProcessor) Accepts(j process.Job) bool {
	return j.Path != "" || strings.HasPrefix(string(j.Head), "some")
}
func (echoProcessor) Process(_ context.Context, j process.Job) (process.Result, error) {
	b, err := os.ReadFile(j.Path)
	return process.Result{Text: string(b)}, err
}

// Two nodes on one bucket: an upload begun on one is finished on the other,
// hashed without a second read; a restarted node counts the unfinished
// uploads in the bucket against quotas; the janitor expires a stale one.
func TestS3Nodes(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	mod := func(c *Config) { c.ExpireAfter = time.Hour }
	a := s3Harness(t, srv, mod, nil)
	b := s3Harness(t, srv, mod, nil)
	data := randomBytes(6<<20 + 10)
	loc, id := a.mustCreate("alice", len(data), nil)
	a.mustPatch("alice", loc, 0, data[:3<<20])
	b.mustPatch("alice", b.srv.URL+basePath+id, 3<<20, data[3<<20:])
	done := b.pub.waitEvent(t, id, "upload.completed")
	if want := sha256.Sum256(data); eventField(done, "sha256") != hex.EncodeToString(want[:]) {
		t.Errorf("sha256 %s", eventField(done, "sha256"))
	}
	if n := b.s.Metrics().Snapshot().HashFallbackBytes; n != 0 {
		t.Errorf("node b read %d bytes again to hash", n)
	}

	staleLoc, stale := a.mustCreate("alice", 100, nil)
	a.mustPatch("alice", staleLoc, 0, randomBytes(10))
	// A third node, not running: its janitor is driven by hand, two hours
	// on.
	cfg := a.s.cfg
	c, err := New(cfg, newFakePub(), nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c.sweep(t.Context(), time.Now()) // as Run does first
	if n, size := c.quota.usageOf("alice"); n != 1 || size != 100 {
		t.Errorf("a new node counts %d uploads, %d bytes; want 1, 100", n, size)
	}
	c.sweep(t.Context(), time.Now().Add(2*time.Hour))
	if exists(object(srv, baseID(stale)+".info")) {
		t.Error("the stale upload was not expired")
	}
	if !exists(object(srv, baseID(id))) || !exists(object(srv, baseID(id)+".info")) {
		t.Error("the finished upload was removed")
	}
	if got := c.Metrics().Snapshot().Expired; got != 1 {
		t.Errorf("expired = %d, want 1", got)
	}
}

// An upload whose bytes all arrived but whose multipart upload was never
// completed (the request failed at that moment, and tusd never tries
// again) is completed and announced by the janitor.
func TestS3UnfinishedCompletionRecovered(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, nil, nil)
	data := randomBytes(1000)
	sum := sha256.Sum256(data)
	ctx := WithOwner(t.Context(), "alice")
	up, err := h.s.back.tus().NewUpload(ctx, handler.FileInfo{
		ID: newID(), Size: int64(len(data)),
		MetaData: handler.MetaData{OwnerKey: "alice", "sha256": hex.EncodeToString(sum[:])},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	info, err := up.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	if exists(object(srv, baseID(id))) {
		t.Fatal("the object exists before completion")
	}

	h.s.sweep(t.Context(), time.Now().Add(2*announceGrace))
	done := h.pub.waitEvent(t, id, "upload.completed")
	if eventField(done, "sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s", eventField(done, "sha256"))
	}
	if got, err := os.ReadFile(object(srv, baseID(id))); err != nil || string(got) != string(data) {
		t.Errorf("the object after recovery: %v", err)
	}
}

// The janitor removes what belongs to no upload, but in a bucket root
// shared with others only the names Edge writes: a hex-named object of
// someone else's stays.
func TestS3LeftoversOwnNamesOnly(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "up"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			srv := s3test.Start(t)
			h := s3Harness(t, srv, func(c *Config) { c.S3.Prefix = prefix }, nil)
			dir := filepath.Join(srv.Root, srv.Bucket, prefix)
			gone, foreign := newID(), newID()
			names := map[string]bool{ // name: removed
				gone + ".sha256":               true,
				gone + ".done":                 true,
				"text/" + gone + ".txt":        true,
				foreign:                        prefix != "",
				foreign + ".jpg":               false,
				"notes/" + foreign + ".sha256": false,
			}
			for name := range names {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h.s.sweepLeftovers(t.Context(), time.Now().Add(2*DefaultExpireAfter))
			for name, removed := range names {
				if exists(filepath.Join(dir, name)) == removed {
					t.Errorf("%s: removed %v, want %v", name, !removed, removed)
				}
			}
		})
	}
}

// S3 vanishing in the middle of an upload fails the request, and loses
// nothing: once S3 is back, the upload resumes at the offset stored and
// completes with the SHA-256 of every byte.
func TestS3Outage(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	h := s3Harness(t, srv, nil, nil)
	data := randomBytes(12 << 20)
	sum := sha256.Sum256(data)
	loc, id := h.mustCreate("alice", len(data), map[string]string{"sha256": hex.EncodeToString(sum[:])})
	h.mustPatch("alice", loc, 0, data[:6<<20])

	srv.Stop()
	if resp := h.patch("alice", loc, 6<<20, data[6<<20:]); resp.StatusCode < 500 {
		t.Fatalf("PATCH with S3 down: %d %s", resp.StatusCode, readBody(resp))
	}
	srv.Restart(t)

	head := h.do("alice", http.MethodHead, loc, nil)
	offset, err := strconv.Atoi(head.Header.Get("Upload-Offset"))
	if head.StatusCode != http.StatusOK || err != nil || offset < 6<<20 || offset > len(data) {
		t.Fatalf("HEAD after the outage: %d, offset %q", head.StatusCode, head.Header.Get("Upload-Offset"))
	}
	t.Logf("after the outage the upload resumes at %d of %d", offset, len(data))
	if offset < len(data) {
		h.mustPatch("alice", loc, offset, data[offset:])
	}
	done := h.pub.waitEvent(t, id, "upload.completed")
	if eventField(done, "sha256") != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 %s", eventField(done, "sha256"))
	}
	if got, err := os.ReadFile(object(srv, baseID(id))); err != nil || string(got) != string(data) {
		t.Errorf("the object after the outage: %v", err)
	}
}

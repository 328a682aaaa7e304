// Package uploads is Edge's tus upload service: tusd v2 with its file store
// or its S3 store, plus what tusd leaves to the application. It knows no routes beyond tusd's
// own; the HTTP layer authenticates, puts the caller in the request context
// with WithOwner and mounts Handler under the public prefix.
//
// The rules it keeps:
//
//   - Ownership. An upload belongs to the subject that created it. The owner
//     is written into the upload's metadata under OwnerKey by the creation
//     hook, which overwrites whatever the client sent under that key; tus
//     has no way to change metadata after creation, so the value in the
//     .info file is the server's. Every later tus request (HEAD, PATCH, GET,
//     DELETE, and a final concatenation naming partial uploads) is checked
//     against it in the data store and answered 404 when the caller is not
//     the owner, as if the upload did not exist. The HTTP layer may (and
//     should, see Owner) check first as well.
//   - Limits. Size (tusd's own 413, advertised as Tus-Max-Size), media type
//     (the declared filetype at creation, and the sniffed first bytes when
//     they arrive), unfinished uploads per user and their declared bytes.
//     Every refusal is a handler.Error, so tusd sends it as a tus response
//     with a status, an ERR_ code and a message.
//   - Events go to the owner's topic "user:<owner>": upload.created,
//     upload.progress (ephemeral, throttled, with a last one at the end),
//     upload.completed (with the SHA-256), then upload.processed or
//     upload.failed. Events of one upload are published in that order: all
//     of them pass through one queue per upload (see events.go). Partial
//     uploads of a concatenation publish nothing; their final upload
//     publishes everything. upload.failed's reason is "checksum mismatch",
//     "content type <type> not allowed", "quota exceeded" (a deferred
//     length over the bytes quota; these three end the upload), "busy"
//     (the processors' queue was full), "processing failed" or
//     "processing stopped".
//   - Checksum. A client may send the SHA-256 it expects as hex in the
//     "sha256" metadata. On a mismatch the request that completes the
//     upload is answered 460 (the tus checksum extension's status), the
//     data and info go to quarantine (see backing), and the upload is
//     gone.
//   - SHA-256 without a second read: see hash.go.
//   - Expiry: a janitor removes unfinished uploads, because tus has no
//     expiration in tusd. See janitor.go.
//
// Several nodes may share Dir or the bucket (with a shared handler.Locker).
// With Config.Redis, quotas hold across them; without, each node counts
// what it saw plus what was stored when it started (see quota.go), and a
// user spreading uploads over nodes can exceed them by up to a factor of
// the number of nodes.
package uploads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
)

// Defaults of Config.
const (
	DefaultBasePath             = "/v1/uploads/"
	DefaultMaxSize              = 2 << 30
	DefaultMaxConcurrentPerUser = 4
	DefaultMaxBytesPerUser      = 10 << 30
	DefaultProgressInterval     = 250 * time.Millisecond
	DefaultExpireAfter          = 24 * time.Hour
	DefaultQuarantineFor        = 7 * 24 * time.Hour
)

// OwnerKey is the metadata key holding an upload's owner. The server sets
// it at creation and ignores any value the client sent.
const OwnerKey = "edge-owner"

// Config configures a Service. Zero means default.
type Config struct {
	// Dir is the file store directory (required). Quarantined files go to
	// Dir/quarantine, OCR texts to Dir/text. With S3, Dir only holds the
	// parts tusd buffers before sending them and the local copies
	// processors read.
	Dir string
	// S3 stores uploads in an S3 bucket instead of Dir when S3.Bucket is
	// set. Nodes sharing uploads then share the bucket.
	S3 S3Config
	// BasePath is the public prefix tusd builds Location from. Default
	// "/v1/uploads/".
	BasePath string
	// MaxSize is the largest upload in bytes, advertised as Tus-Max-Size.
	// Default 2 GiB.
	MaxSize int64
	// AllowedTypes are media-type patterns ("image/*", "application/pdf").
	// Empty allows any. They are checked against the filetype (or type)
	// metadata at creation and against the type sniffed from the first 512
	// bytes when those arrive; a file the sniffer does not recognise is
	// "application/octet-stream", allowed only when listed. Partial uploads
	// of a concatenation are checked as their final upload; an empty
	// upload has no bytes to sniff.
	AllowedTypes []string
	// MaxConcurrentPerUser bounds a user's unfinished uploads. Default 4.
	MaxConcurrentPerUser int
	// MaxBytesPerUser bounds the sizes of a user's unfinished uploads
	// together; an upload whose length is deferred counts as MaxSize until
	// it declares its length. Default 10 GiB.
	MaxBytesPerUser int64
	// ProgressInterval is the least time between two upload.progress events
	// of one upload. Default 250ms.
	ProgressInterval time.Duration
	// ExpireAfter is the age (since creation or the last write) at which the
	// janitor removes an unfinished upload. Default 24h.
	ExpireAfter time.Duration
	// RecoverWithin is the age up to which the janitor announces a
	// finished upload whose completion was never announced (see
	// events.go). Keep it within the broker's idempotency window, so that
	// a repeat is recognised. Default ExpireAfter.
	RecoverWithin time.Duration
	// Redis, when set, keeps the per-user quotas there, so that they hold
	// across the nodes sharing it (see redisQuotas); nil counts per node.
	Redis redis.UniversalClient
	// QuotaPrefix is the key prefix of those quotas. Default
	// DefaultQuotaPrefix.
	QuotaPrefix string
	// QuarantineFor is how long the data and info of an upload that failed
	// its checksum are kept for inspection before the janitor removes
	// them. Default 7 days.
	QuarantineFor time.Duration
	// RespectForwardedHeaders makes tusd build Location from
	// X-Forwarded-Host/-Proto and Forwarded; only behind a proxy that sets
	// them.
	RespectForwardedHeaders bool
}

// validate fills in defaults and checks what has none.
func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("uploads: Dir is required")
	}
	if c.BasePath == "" {
		c.BasePath = DefaultBasePath
	}
	// tusd adds the slash too; doing it here keeps textUrl in step.
	if !strings.HasSuffix(c.BasePath, "/") {
		c.BasePath += "/"
	}
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxConcurrentPerUser <= 0 {
		c.MaxConcurrentPerUser = DefaultMaxConcurrentPerUser
	}
	if c.MaxBytesPerUser <= 0 {
		c.MaxBytesPerUser = DefaultMaxBytesPerUser
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.ExpireAfter <= 0 {
		c.ExpireAfter = DefaultExpireAfter
	}
	if c.RecoverWithin <= 0 {
		c.RecoverWithin = c.ExpireAfter
	}
	if c.QuarantineFor <= 0 {
		c.QuarantineFor = DefaultQuarantineFor
	}
	for _, p := range c.AllowedTypes {
		if !validPattern(p) {
			return fmt.Errorf("uploads: allowed type %q is not a media type or type/* pattern", p)
		}
	}
	return nil
}

// Errors the Service returns; callers match them with errors.Is.
var (
	// ErrNotFound means there is no such upload (or the id is malformed).
	ErrNotFound = errors.New("uploads: no such upload")
	// ErrNotProcessed means the upload exists but has no text: it was not
	// processed (yet), or no processor made text of it.
	ErrNotProcessed = errors.New("uploads: upload not processed")
)

var errRunTwice = errors.New("uploads: Run called twice")

// Publisher publishes events; edge.Broker fits.
type Publisher interface {
	Publish(ctx context.Context, p edge.Publication) (edge.PublishResult, error)
}

// Processors post-processes finished uploads; *process.Runner fits. Submit
// must not block and returns false when it cannot take the job.
type Processors interface {
	Submit(j process.Job, done func(process.Job, process.Result, error)) bool
}

// Service is the tus upload service. Make it with New, serve Handler, and
// keep Run running while Handler serves: tusd's notifications are
// unbuffered, so without Run every creation blocks.
type Service struct {
	cfg     Config
	pub     Publisher
	procs   Processors
	log     *slog.Logger
	back    backing
	locker  handler.Locker
	tus     *handler.Handler
	quota   quotaBook
	metrics *Metrics
	shards  []chan task
	// failures carries upload.failed events from the request path to
	// drain, which orders them after the upload's notifications.
	failures chan task
	now      func() time.Time
	// checkpoint is how often a long chunk saves its hash state; see
	// defaultCheckpoint.
	checkpoint int64

	runMu   sync.Mutex
	running bool
	// stopped is closed when Run returns, so nothing waits on the queues
	// for a consumer that is gone.
	stopped chan struct{}
}

// New makes a Service storing uploads in cfg.Dir, or in cfg.S3.Bucket. locker nil means tusd's
// memory locker (one node). procs nil means no post-processing; a typed nil
// pointer is not nil and will be called.
func New(cfg Config, pub Publisher, locker handler.Locker, procs Processors, log *slog.Logger) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, errors.New("uploads: a Publisher is required")
	}
	if log == nil {
		log = slog.Default()
	}
	if locker == nil {
		locker = memorylocker.New()
	}
	back, err := newBacking(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:        cfg,
		pub:        pub,
		procs:      procs,
		log:        log,
		back:       back,
		locker:     locker,
		metrics:    newMetrics(),
		now:        time.Now,
		failures:   make(chan task),
		stopped:    make(chan struct{}),
		checkpoint: defaultCheckpoint,
	}
	s.quota = newQuotas(cfg.MaxConcurrentPerUser, cfg.MaxBytesPerUser)
	if cfg.Redis != nil {
		s.quota = newRedisQuotas(cfg.Redis, cfg.QuotaPrefix, cfg.MaxConcurrentPerUser, cfg.MaxBytesPerUser, cfg.ExpireAfter, log)
	}
	s.shards = make([]chan task, shardCount)
	for i := range s.shards {
		s.shards[i] = make(chan task, shardQueue)
	}
	// A restart must not reset quotas: count what is stored before
	// serving. (The janitor counts again every round, see sweep.)
	var stored []storedUpload
	if err := back.scan(context.Background(), func(id string, info handler.FileInfo, _ time.Time, err error) {
		if err == nil && !info.IsFinal && !finished(info) {
			stored = append(stored, storedUpload{info.MetaData[OwnerKey], id, s.claimSize(info)})
		}
	}); err != nil {
		return nil, fmt.Errorf("uploads: scanning the uploads: %w", err)
	}
	s.quota.addAll(stored)

	st := &store{s: s}
	comp := handler.NewStoreComposer()
	comp.UseCore(st)
	comp.UseTerminater(st)
	comp.UseConcater(st)
	comp.UseLengthDeferrer(st)
	comp.UseContentServer(st)
	comp.UseLocker(locker)
	h, err := handler.NewHandler(handler.Config{
		StoreComposer: comp,
		MaxSize:       cfg.MaxSize,
		BasePath:      cfg.BasePath,
		// The server has one CORS layer; tusd's default allows every
		// origin with an unanchored regexp.
		Cors:                      &handler.CorsConfig{Disable: true},
		NotifyCompleteUploads:     true,
		NotifyTerminatedUploads:   true,
		NotifyUploadProgress:      true,
		NotifyCreatedUploads:      true,
		UploadProgressInterval:    cfg.ProgressInterval,
		Logger:                    newTusLogger(log),
		RespectForwardedHeaders:   cfg.RespectForwardedHeaders,
		PreUploadCreateCallback:   s.preCreate,
		PreFinishResponseCallback: s.preFinish,
	})
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	s.tus = h
	return s, nil
}

// Handler returns tusd's routed handler for the paths under BasePath; mount
// it with http.StripPrefix(BasePath, ...). Every request must carry
// WithOwner.
func (s *Service) Handler() http.Handler { return s.tus }

// Metrics returns the service's counters.
func (s *Service) Metrics() *Metrics { return s.metrics }

type ownerKey struct{}

// WithOwner returns ctx carrying the authenticated subject; the HTTP layer
// calls it for every request it hands to Handler.
func WithOwner(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, ownerKey{}, subject)
}

// ownerFrom returns the subject WithOwner put in ctx, or "".
func ownerFrom(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}

// Owner returns the subject that created upload id, or ErrNotFound. The HTTP
// layer should check it before handing a request to tusd: tusd takes the
// upload's lock before the store's own check, and taking the lock asks the
// holder to let go, so a stranger's HEAD would interrupt the owner's PATCH.
func (s *Service) Owner(ctx context.Context, id string) (string, error) {
	info, err := s.readInfo(ctx, id)
	if err != nil {
		return "", err
	}
	owner := info.MetaData[OwnerKey]
	if owner == "" {
		// Not made through this service: nobody's.
		return "", ErrNotFound
	}
	return owner, nil
}

// Text returns the text a processor (OCR) made of upload id: ErrNotFound
// when there is no such upload, ErrNotProcessed when it has no text.
func (s *Service) Text(ctx context.Context, id string) (string, error) {
	if !s.back.validID(id) {
		return "", ErrNotFound
	}
	b, err := s.back.readSide(ctx, id, sideText)
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("uploads: reading text of %s: %w", id, err)
	}
	if _, err := s.readInfo(ctx, id); err != nil {
		return "", err
	}
	return "", ErrNotProcessed
}

// Run drains tusd's notifications (they are unbuffered and block the
// requests that send them), publishes the events, and runs the janitor,
// until ctx ends. Stop the HTTP server before ending ctx: a request that
// notifies after Run has returned waits until its own context ends.
func (s *Service) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.running {
		s.runMu.Unlock()
		return errRunTwice
	}
	s.running = true
	s.runMu.Unlock()
	defer close(s.stopped)

	var wg sync.WaitGroup
	for _, q := range s.shards {
		wg.Go(func() { s.work(ctx, q) })
	}
	wg.Go(func() { s.drain(ctx) })
	wg.Go(func() { s.janitor(ctx) })
	wg.Wait()
	return nil
}

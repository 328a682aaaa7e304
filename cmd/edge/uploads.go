package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/edge-rt/edge/config"
	"github.com/edge-rt/edge/edge"
	"github.com/edge-rt/edge/edge/tuslock"
	"github.com/edge-rt/edge/edge/uploads"
	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/redis/go-redis/v9"
	"github.com/tus/tusd/v2/pkg/handler"
)

// uploadsBasePath is the public prefix of the tus endpoint.
const uploadsBasePath = "/v1/uploads/"

// newUploads builds the upload service: tusd on the file store or an S3
// bucket, locked through Redis when nodes share it (else in memory), with
// OCR when enabled.
// The returned runner is nil without processors.
func newUploads(cfg *config.Config, pub edge.Broker, rdb redis.UniversalClient, log *slog.Logger) (*uploads.Service, *process.Runner, func(), error) {
	if err := os.MkdirAll(cfg.Uploads.Dir, 0o750); err != nil {
		return nil, nil, nil, err
	}
	var locker handler.Locker
	closeLocker := func() {}
	if rdb != nil {
		l := tuslock.New(rdb, tuslock.Options{LeaseTTL: cfg.Uploads.LockLease, Logger: log})
		locker, closeLocker = l, func() { l.Close() }
	}
	var runner *process.Runner
	var procs uploads.Processors
	if cfg.Uploads.OCR {
		ocr, err := process.NewOCR(process.OCROptions{Languages: cfg.Uploads.OCRLanguages})
		if err != nil {
			return nil, nil, nil, err
		}
		runner = process.NewRunner([]process.Processor{ocr}, process.RunnerOptions{
			Concurrency: cfg.Uploads.Processors, Timeout: cfg.Uploads.ProcessorTimeout, Logger: log,
		})
		procs = runner
	}
	svc, err := uploads.New(uploads.Config{
		Dir:                  cfg.Uploads.Dir,
		BasePath:             uploadsBasePath,
		MaxSize:              cfg.Uploads.MaxSize,
		AllowedTypes:         cfg.Uploads.AllowedTypes,
		MaxConcurrentPerUser: cfg.Uploads.MaxConcurrentPerUser,
		MaxBytesPerUser:      cfg.Uploads.MaxBytesPerUser,
		ProgressInterval:     cfg.Uploads.ProgressInterval,
		ExpireAfter:          cfg.Uploads.ExpireAfter,
		QuarantineFor:        cfg.Uploads.QuarantineFor,
		// Per-user quotas hold across the nodes sharing Redis.
		Redis: rdb,
		// A lost completion is announced again only while the broker
		// still knows its idempotency key.
		RecoverWithin: min(cfg.Uploads.ExpireAfter, cfg.Retention.IdempotencyTTL),
		S3: uploads.S3Config{
			Bucket:    cfg.Uploads.S3.Bucket,
			Prefix:    strings.TrimPrefix(cfg.Uploads.S3.Prefix, "/"), // "/" is the root
			Endpoint:  cfg.Uploads.S3.Endpoint,
			Region:    cfg.Uploads.S3.Region,
			PathStyle: cfg.Uploads.S3.PathStyle,
			AccessKey: cfg.Uploads.S3.AccessKey,
			SecretKey: cfg.Uploads.S3.SecretKey,
			PartSize:  cfg.Uploads.S3.PartSize,
		},
		// Forwarded headers build the Location tus clients follow; trust
		// them only where the operator trusts a proxy.
		RespectForwardedHeaders: len(cfg.HTTP.TrustedProxies) > 0,
	}, pub, locker, procs, log)
	if err != nil {
		closeLocker()
		return nil, nil, nil, err
	}
	return svc, runner, closeLocker, nil
}

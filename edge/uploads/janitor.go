package uploads

// The janitor. tusd has no expiration extension, so unfinished uploads
// would stay forever: every few minutes the janitor removes those whose
// last activity (creation or the last write, see backing.load) is older
// than ExpireAfter, with the files kept beside them. Finished partial
// uploads go too: once their final upload is made they are only copies,
// and a client that never made it will not come back after that long.
// Files of an upload whose .info is gone (a crash in the middle of a
// removal) go after the same age, quarantined files after QuarantineFor.
//
// An upload is removed under its lock, so a PATCH that arrives meanwhile
// either waits and then finds no upload, or has written and so made the
// upload young again (checked again under the lock). The janitor also
// corrects the quota bookkeeping from what it finds on disk.

import (
	"context"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// janitorLockTimeout bounds the wait for an upload's lock; an upload busy
// for that long is not expired anyway.
const janitorLockTimeout = 5 * time.Second

// claimGrace is the age a quota claim must have before the janitor may
// drop it for want of an upload on disk.
const claimGrace = time.Minute

// janitor sweeps now and then every few minutes (more often when
// ExpireAfter is short) until ctx ends.
func (s *Service) janitor(ctx context.Context) {
	every := min(5*time.Minute, max(time.Second, s.cfg.ExpireAfter/4))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweep(ctx, s.now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep is one round of the janitor, as at time now.
func (s *Service) sweep(ctx context.Context, now time.Time) {
	// An upload is counted in the creation hook and written to disk a
	// moment later: only claims older than claimGrace can be told missing.
	claimed := s.quota.idsBefore(now.Add(-claimGrace))
	onDisk := make(map[string]bool)
	var stored []storedUpload
	err := s.back.scan(ctx, func(id string, info handler.FileInfo, modified time.Time, err error) {
		// There, even if unreadable now (S3 throttling, say): its claim
		// stays.
		onDisk[baseID(id)] = true
		if err != nil {
			s.log.Debug("UploadUnreadable", "upload", id, "error", err)
			return
		}
		done := finished(info)
		if done {
			// Finished on another node, or this node missed it.
			s.quota.release(id)
			if !info.IsPartial {
				s.announceIfLost(ctx, id, info, now.Sub(modified))
				return
			}
		}
		if now.Sub(modified) < s.cfg.ExpireAfter {
			if !done && !info.IsFinal {
				// Counted again each round: see redisQuotas.addAll.
				stored = append(stored, storedUpload{info.MetaData[OwnerKey], id, s.claimSize(info)})
			}
			return
		}
		s.expire(ctx, id, now)
	})
	if err != nil {
		s.log.Error("UploadJanitorFailed", "error", err)
		return
	}
	s.quota.addAll(stored)
	for _, id := range claimed {
		if !onDisk[id] {
			s.quota.release(id)
		}
	}
	s.sweepLeftovers(ctx, now)
}

// announceGrace is how old a finished upload must be before the janitor
// takes a missing completion marker for a lost announcement rather than one
// still in a node's queue.
const announceGrace = time.Minute

// announceIfLost queues the completion of finished upload id again when it
// is between announceGrace and RecoverWithin old (see the top of
// events.go). It has no marker: scan passes no announced upload.
func (s *Service) announceIfLost(ctx context.Context, id string, info handler.FileInfo, age time.Duration) {
	if age < announceGrace || age > s.cfg.RecoverWithin {
		return
	}
	s.metrics.recovered.Add(1)
	s.log.Info("UploadCompletionRecovered", "upload", id, "owner", info.MetaData[OwnerKey])
	s.enqueue(ctx, task{kind: taskCompleted, info: info, recovered: true})
}

// expire removes upload id if, under its lock, it is still old and
// unfinished (or a partial).
func (s *Service) expire(ctx context.Context, id string, now time.Time) {
	lock, err := s.locker.NewLock(id)
	if err != nil {
		s.log.Warn("UploadExpiryLockFailed", "upload", id, "error", err)
		return
	}
	lctx, cancel := context.WithTimeout(ctx, janitorLockTimeout)
	err = lock.Lock(lctx, func() {})
	cancel()
	if err != nil {
		s.log.Debug("UploadExpiryLockFailed", "upload", id, "error", err)
		return
	}
	defer lock.Unlock()
	info, modified, err := s.back.load(ctx, id)
	if err != nil || (finished(info) && !info.IsPartial) || now.Sub(modified) < s.cfg.ExpireAfter {
		return
	}
	if err := s.remove(ctx, id); err != nil {
		s.log.Error("UploadRemoveFailed", "upload", id, "error", err)
		return
	}
	s.metrics.expired.Add(1)
	s.log.Info("UploadExpired", "upload", id, "owner", info.MetaData[OwnerKey],
		"offset", info.Offset, "size", info.Size, "partial", info.IsPartial,
		"idle", now.Sub(modified).Round(time.Second))
}

// sweepLeftovers removes what belongs to no upload (see
// backing.sweepLeftovers) and says so.
func (s *Service) sweepLeftovers(ctx context.Context, now time.Time) {
	removed, err := s.back.sweepLeftovers(ctx, now, s.cfg.ExpireAfter, s.cfg.QuarantineFor)
	for _, l := range removed {
		s.metrics.leftoversRemoved.Add(1)
		s.log.Info("UploadLeftoverRemoved", "file", l.name, "quarantined", l.quarantined)
	}
	if err != nil {
		s.log.Error("UploadJanitorFailed", "error", err)
	}
}

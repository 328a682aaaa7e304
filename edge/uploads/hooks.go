package uploads

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/tus/tusd/v2/pkg/handler"
)

// Refusals. Each is a handler.Error, which tusd sends as the response:
// the status, and "ERR_CODE: message" as a text body.
var (
	errUnauthenticated = handler.NewError("ERR_UNAUTHENTICATED",
		"uploads need an authenticated user", http.StatusUnauthorized)
	errFiletypeMissing = handler.NewError("ERR_FILETYPE_NOT_ALLOWED",
		"a filetype metadata entry is required (only some types are allowed)", http.StatusUnsupportedMediaType)
	errInvalidChecksum = handler.NewError("ERR_INVALID_CHECKSUM",
		"sha256 metadata must be 64 hex digits", http.StatusBadRequest)
	errNotHashed = handler.NewError("ERR_INTERNAL_SERVER_ERROR",
		"the upload's SHA-256 could not be computed", http.StatusInternalServerError)
	errUnusableID = handler.NewError("ERR_INTERNAL_SERVER_ERROR",
		"the storage service made an upload id this server cannot serve; see the server log", http.StatusInternalServerError)
	// 460 is the tus checksum extension's status for a checksum mismatch;
	// tus clients know it and do not retry it.
	errChecksumMismatch = handler.NewError("ERR_CHECKSUM_MISMATCH",
		"the upload's SHA-256 differs from its sha256 metadata; the upload was discarded", 460)
)

func errFiletypeNotAllowed(ft string) error {
	return handler.NewError("ERR_FILETYPE_NOT_ALLOWED",
		fmt.Sprintf("file type %.100q is not allowed", ft), http.StatusUnsupportedMediaType)
}

func errContentNotAllowed(mt string) error {
	return handler.NewError("ERR_CONTENT_NOT_ALLOWED",
		fmt.Sprintf("the file's content is %s, which is not allowed; the upload was discarded", mt),
		http.StatusUnsupportedMediaType)
}

// preCreate is tusd's PreUploadCreateCallback: it decides whether an upload
// may be made and gives it its id and owner.
func (s *Service) preCreate(ev handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	var none handler.FileInfoChanges
	owner := ownerFrom(ev.Context)
	if owner == "" {
		s.refused(errUnauthenticated)
		return handler.HTTPResponse{}, none, errUnauthenticated
	}
	info := ev.Upload
	meta := maps.Clone(info.MetaData)
	if meta == nil {
		meta = handler.MetaData{}
	}
	// Unconditionally: a client's own "edge-owner" must not name someone else.
	meta[OwnerKey] = owner

	// Partial uploads are slices of a file and usually carry no metadata
	// (tus-js-client sends it with the final upload only): the final upload
	// is the one checked. tusd has already fetched each partial of a final
	// upload through the store, which refused other users' partials.
	if !info.IsPartial {
		if err := s.checkFiletype(meta); err != nil {
			s.refused(err)
			return handler.HTTPResponse{}, none, err
		}
	}
	if sum := meta["sha256"]; sum != "" {
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			s.refused(errInvalidChecksum)
			return handler.HTTPResponse{}, none, errInvalidChecksum
		}
	}

	// The id is chosen here rather than by the file store so that the
	// quota reservation below has a key before the upload exists.
	id := newID()
	// A final upload is complete the moment it is made, from partials that
	// were counted while they were unfinished: it takes no quota.
	if !info.IsFinal {
		if err := s.quota.reserve(owner, id, s.claimSize(info)); err != nil {
			s.refused(err)
			return handler.HTTPResponse{}, none, err
		}
	}
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// claimSize is what an unfinished upload counts against its owner's bytes
// quota: its length, or, while the length is deferred, the most it may
// become (MaxSize). Counting a deferred upload as nothing would let its
// bytes pile up unbounded by the quota until the length is declared.
func (s *Service) claimSize(info handler.FileInfo) int64 {
	if info.SizeIsDeferred {
		return s.cfg.MaxSize
	}
	return info.Size
}

// checkFiletype checks the declared type against AllowedTypes. tus-js-client
// sends "filetype", Uppy "type".
func (s *Service) checkFiletype(meta handler.MetaData) error {
	if len(s.cfg.AllowedTypes) == 0 {
		return nil
	}
	ft := filetype(meta)
	if ft == "" {
		return errFiletypeMissing
	}
	if !s.allowed(ft) {
		return errFiletypeNotAllowed(ft)
	}
	return nil
}

// preFinish is tusd's PreFinishResponseCallback, run in the request that
// completes an upload, before its response and before the completion
// notification. It computes the SHA-256 here, on the request path, so that
// a mismatch with the client's sha256 metadata is the response to that
// request rather than news that arrives later.
func (s *Service) preFinish(ev handler.HookEvent) (handler.HTTPResponse, error) {
	info := ev.Upload
	if info.IsPartial {
		return handler.HTTPResponse{}, nil
	}
	sum, err := s.sum(ev.Context, info.ID, info.Size)
	if err != nil {
		// The error names paths on the server: log it, answer without it.
		s.log.Error("UploadNotHashed", "upload", info.ID, "error", err)
		return handler.HTTPResponse{}, errNotHashed
	}
	if !s.verify(ev.Context, info, sum, func() { s.fail(ev.Context, info, "checksum mismatch") }) {
		s.refused(errChecksumMismatch)
		return handler.HTTPResponse{}, errChecksumMismatch
	}
	s.metrics.completed.Add(1)
	return handler.HTTPResponse{}, nil
}

// verify checks sum against the client's sha256 metadata, if any. On a
// mismatch it quarantines the upload, then calls failed (which reports the
// upload.failed the caller's way: see fail); when the quarantine fails (S3
// copies objects of at most 5 GiB at once) it removes the upload all the
// same: bytes that are not what the client sent must not be served,
// processed or announced.
func (s *Service) verify(ctx context.Context, info handler.FileInfo, sum []byte, failed func()) bool {
	want := info.MetaData["sha256"]
	if want == "" || strings.EqualFold(want, hex.EncodeToString(sum)) {
		return true
	}
	if err := s.quarantine(ctx, info.ID); err != nil {
		s.log.Error("UploadQuarantineFailed", "upload", info.ID, "error", err)
		if err := s.remove(ctx, info.ID); err != nil {
			s.log.Error("UploadRemoveFailed", "upload", info.ID, "error", err)
		}
	}
	// After the quarantine: whoever hears of the failure finds the upload
	// gone already.
	failed()
	return false
}

// quarantine moves upload id's data and info aside (see backing), for
// someone to look at, and removes the upload: it can no longer be read,
// resumed or completed. The janitor removes quarantined files after
// Config.QuarantineFor.
func (s *Service) quarantine(ctx context.Context, id string) error {
	s.quota.release(id)
	if err := s.back.quarantine(ctx, id); err != nil {
		return err
	}
	s.metrics.quarantined.Add(1)
	return nil
}

// fail records that upload info failed and queues its upload.failed event
// behind the upload's earlier events, through drain (see there).
func (s *Service) fail(ctx context.Context, info handler.FileInfo, reason string) {
	s.metrics.failed.Add(1)
	select {
	case s.failures <- task{kind: taskFailed, info: info, reason: reason}:
	case <-ctx.Done():
		s.log.Warn("UploadEventDropped", "upload", info.ID, "type", "upload.failed", "error", ctx.Err())
	case <-s.stopped:
	}
}

// refused counts a refusal by its tus error code.
func (s *Service) refused(err error) {
	var herr handler.Error
	if errors.As(err, &herr) {
		s.metrics.refusal(herr.ErrorCode)
	}
}

// filetype returns the declared media type of an upload.
func filetype(meta handler.MetaData) string {
	if ft := meta["filetype"]; ft != "" {
		return ft
	}
	return meta["type"]
}

// filename returns the declared file name of an upload.
func filename(meta handler.MetaData) string {
	if n := meta["filename"]; n != "" {
		return n
	}
	return meta["name"]
}

// newID returns a random upload id: 32 hex digits, as tusd makes them.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: crypto/rand.Read panics instead
	return hex.EncodeToString(b)
}

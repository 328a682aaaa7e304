package uploads

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/tus/tusd/v2/pkg/handler"
)

// store wraps tusd's store (file or S3, see backing) with what tusd leaves
// to the application: the owner check on every upload a request names, the
// quota bookkeeping, the sniffing of the first bytes and the running
// SHA-256. tusd holds the upload's lock around every call on an upload, so
// an upload never sees two calls at once.
type store struct{ s *Service }

// upload is one upload of the store; inner is tusd's store's.
type upload struct {
	s     *Service
	id    string
	inner handler.Upload
}

var (
	_ handler.DataStore               = (*store)(nil)
	_ handler.TerminaterDataStore     = (*store)(nil)
	_ handler.ConcaterDataStore       = (*store)(nil)
	_ handler.LengthDeferrerDataStore = (*store)(nil)
	_ handler.ContentServerDataStore  = (*store)(nil)
	_ handler.Upload                  = (*upload)(nil)
)

// NewUpload creates the upload the creation hook approved. The hook put the
// owner and the id in info; one without them did not come through the hook.
func (st *store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	s := st.s
	owner := ownerFrom(ctx)
	// The hook's id: the S3 store appends its multipart id to it below.
	if owner == "" || info.MetaData[OwnerKey] != owner || !hexID(info.ID) {
		s.quota.release(info.ID)
		return nil, errUnauthenticated
	}
	inner, err := s.back.tus().NewUpload(ctx, info)
	if err != nil {
		// The hook reserved quota for this id; the upload never came to be.
		s.quota.release(info.ID)
		return nil, err
	}
	if !info.IsPartial {
		s.metrics.created.Add(1)
	}
	made, err := inner.GetInfo(ctx)
	if err != nil {
		s.quota.release(info.ID)
		return nil, err
	}
	if !s.back.validID(made.ID) {
		// An S3 service whose multipart ids have characters a URL path or
		// this service cannot take: the upload could never be reached.
		s.quota.release(info.ID)
		if terr := s.back.tus().AsTerminatableUpload(inner).Terminate(ctx); terr != nil {
			s.log.Error("UploadRemoveFailed", "upload", made.ID, "error", terr)
		}
		s.log.Error("UploadIDUnusable", "upload", made.ID)
		return nil, errUnusableID
	}
	return &upload{s: s, id: made.ID, inner: inner}, nil
}

// GetUpload returns upload id when the request's owner created it, and
// tusd's 404 otherwise, so a stranger cannot tell others' uploads from
// missing ones.
func (st *store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	s := st.s
	if !s.back.validID(id) {
		return nil, handler.ErrNotFound
	}
	inner, err := s.back.tus().GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	info, err := inner.GetInfo(ctx)
	if err != nil {
		return nil, err
	}
	if owner := ownerFrom(ctx); owner == "" || info.MetaData[OwnerKey] != owner || info.ID != id {
		return nil, handler.ErrNotFound
	}
	return &upload{s: s, id: id, inner: inner}, nil
}

func (st *store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

func (st *store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload {
	return u.(*upload)
}

func (st *store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

func (st *store) AsServableUpload(u handler.Upload) handler.ServableUpload {
	return u.(*upload)
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	return u.inner.GetInfo(ctx)
}

func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	return u.inner.GetReader(ctx)
}

func (u *upload) ServeContent(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return u.s.back.tus().AsServableUpload(u.inner).ServeContent(ctx, w, r)
}

// FinishUpload ends the upload's claim on its owner's quota.
func (u *upload) FinishUpload(ctx context.Context) error {
	if err := u.inner.FinishUpload(ctx); err != nil {
		return err
	}
	u.s.quota.release(u.id)
	return nil
}

// Terminate removes the upload with everything the service keeps beside it.
func (u *upload) Terminate(ctx context.Context) error {
	return u.s.remove(ctx, u.id)
}

// DeclareLength charges a deferred length to the quota, in place of the
// MaxSize its upload was counted at, when it becomes known; over quota
// (it was counted on another node, not here), the upload is removed, since
// it could never finish.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return err
	}
	if err := u.s.quota.resize(info.MetaData[OwnerKey], u.id, length); err != nil {
		u.s.refused(err)
		if errors.Is(err, errQuotaUnavailable) {
			return err // not the upload's fault: the client may retry
		}
		if !info.IsPartial {
			u.s.fail(ctx, info, "quota exceeded")
		}
		if rerr := u.s.remove(ctx, u.id); rerr != nil {
			u.s.log.Error("UploadRemoveFailed", "upload", u.id, "error", rerr)
		}
		return err
	}
	return u.s.back.tus().AsLengthDeclarableUpload(u.inner).DeclareLength(ctx, length)
}

// WriteChunk appends src, checking the first bytes' type and feeding the
// running SHA-256 (see write).
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	n, err := u.write(ctx, offset, src)
	u.s.metrics.bytesReceived.Add(uint64(n))
	return n, err
}

// ConcatUploads builds a final upload from its partials. It streams each
// partial through write rather than calling the file store's own
// ConcatUploads, so the final upload's first bytes are sniffed and its
// SHA-256 is computed from the one read that copies the data anyway.
func (u *upload) ConcatUploads(ctx context.Context, partials []handler.Upload) error {
	var offset int64
	for _, p := range partials {
		pu, ok := p.(*upload)
		if !ok {
			return fmt.Errorf("uploads: partial upload of unexpected type %T", p)
		}
		r, err := pu.inner.GetReader(ctx)
		if err != nil {
			return err
		}
		n, err := u.write(ctx, offset, r)
		r.Close()
		offset += n
		if err != nil {
			return err
		}
	}
	// tusd calls FinishUpload only after a PATCH, never after a
	// concatenation, and its own stores' ConcatUploads finish themselves:
	// on S3 this completes the multipart upload into the object.
	return u.inner.FinishUpload(ctx)
}

// remove deletes upload id and what the service keeps beside it, and ends
// its claim on quota. What is already gone is not an error: a crash, a
// janitor on another node or the quarantine may have taken it.
func (s *Service) remove(ctx context.Context, id string) error {
	s.quota.release(id)
	return s.back.remove(ctx, id)
}

package uploads

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
)

// backing is where uploads live, with the files the service keeps beside
// them: a directory (fileBacking, tusd's file store) or an S3 bucket
// (s3Backing, tusd's s3store). The service reaches the bytes and the infos
// through tusd's store where tusd's store can do it, and through the
// backing for what tusd knows nothing of: the saved SHA-256 state, the
// processors' text, listing uploads for the janitor, quarantine.
type backing interface {
	// tus is tusd's data store over this backing.
	tus() tusStore
	// validID reports whether id has the form of this backing's upload
	// ids. Anything else is refused before it reaches a path or a key.
	validID(id string) bool
	// readInfo returns upload id's info as tusd stored it at creation (its
	// Offset is not kept up to date), or ErrNotFound.
	readInfo(ctx context.Context, id string) (handler.FileInfo, error)
	// load returns upload id's info with its current Offset, and its last
	// activity (creation or the last write).
	load(ctx context.Context, id string) (handler.FileInfo, time.Time, error)
	// scan calls fn for every upload with what load returns, except
	// finished uploads already announced (marked sideDone): nothing is left
	// to do about those, and they pile up. An upload that cannot be read
	// (but is there) comes with the error, and id may be its base id.
	scan(ctx context.Context, fn scanFunc) error
	// readSide returns upload id's side file of kind k, or ErrNotFound.
	readSide(ctx context.Context, id string, k side) ([]byte, error)
	// writeSide replaces upload id's side file of kind k, atomically: a
	// reader sees the old content or the new, never a part.
	writeSide(ctx context.Context, id string, k side, b []byte) error
	// openData returns upload id's bytes from offset on, at most n of them
	// (n < 0: all). On S3 the upload
	// must be finished.
	openData(ctx context.Context, id string, offset, n int64) (io.ReadCloser, error)
	// firstBytes returns the first n bytes of unfinished upload id, all
	// stored already, n below sniffLen.
	firstBytes(ctx context.Context, id string, n int64) ([]byte, error)
	// finish makes sure the finished upload id's data is complete: on S3 a
	// multipart upload whose completion failed looks finished to tusd
	// (its parts add up), and tusd never tries again.
	finish(ctx context.Context, id string) error
	// localPath returns the path of the file holding finished upload id's
	// bytes when the backing keeps them on local disk, "" when not.
	localPath(id string) string
	// localFile returns the path of a local file holding the finished
	// upload id's bytes, for processors, and a function to call when done
	// with it: a copy made for the purpose when localPath has none.
	localFile(ctx context.Context, id string) (string, func(), error)
	// remove deletes upload id, its data, its info and its side files.
	// What is already gone is not an error.
	remove(ctx context.Context, id string) error
	// quarantine moves upload id's data and info aside, where an operator
	// can look at them and the janitor removes them after a while, then
	// removes the upload.
	quarantine(ctx context.Context, id string) error
	// sweepLeftovers removes side files of uploads that are gone and
	// temporary files once older than age, and quarantined uploads once
	// older than keep, and returns what it removed.
	sweepLeftovers(ctx context.Context, now time.Time, age, keep time.Duration) ([]leftover, error)
	// savesWithinChunk reports whether the hash state may be saved in the
	// middle of a chunk: true when the store has written every byte it has
	// read (the file store, see teeHash). The s3store buffers parts, so a
	// save there would cover bytes that may never be stored.
	savesWithinChunk() bool
}

// scanFunc receives an upload from backing.scan: err non-nil when it is
// there but could not be read (the other arguments are then empty).
type scanFunc func(id string, info handler.FileInfo, modified time.Time, err error)

// tusStore is what Edge uses of a tusd data store; tusd's file store and
// s3store both are one.
type tusStore interface {
	handler.DataStore
	handler.TerminaterDataStore
	handler.ConcaterDataStore
	handler.LengthDeferrerDataStore
	handler.ContentServerDataStore
}

// leftover is a file (an object on S3) the janitor removed that belonged
// to no upload: name is its name under the backing's directory or prefix.
type leftover struct {
	name        string
	quarantined bool
}

// side is a kind of file the service keeps beside an upload.
type side int

const (
	// sideHash is the saved SHA-256 state (see hash.go).
	sideHash side = iota
	// sideText is the text a processor made (OCR).
	sideText
	// sideDone marks an upload whose completion was announced (empty).
	sideDone
)

// Names of the parts of a backing that are not uploads, under its
// directory or key prefix.
const (
	quarantineDir = "quarantine"
	textDir       = "text"
)

// hexID reports whether id is 32 hex digits: the ids the creation hook
// gives uploads (newID), and the object part of an S3 upload's id.
func hexID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// baseID returns the part of an upload id the creation hook chose: the id
// itself on the file store, the part before "+" on S3 (tusd's s3store
// appends the multipart upload's id). Quotas and side files are keyed by
// it, since the hook reserves quota before the store makes the full id.
func baseID(id string) string {
	base, _, _ := strings.Cut(id, "+")
	return base
}

// readInfo returns upload id's info as stored at creation, or ErrNotFound.
func (s *Service) readInfo(ctx context.Context, id string) (handler.FileInfo, error) {
	if !s.back.validID(id) {
		return handler.FileInfo{}, ErrNotFound
	}
	return s.back.readInfo(ctx, id)
}

// finished reports whether every byte of the upload is there.
func finished(info handler.FileInfo) bool {
	return !info.SizeIsDeferred && info.Offset == info.Size
}

// s3Timeout bounds the S3 requests New makes: a wrong endpoint should stop
// the start, not hang it.
const s3Timeout = 30 * time.Second

// newBacking returns the backing cfg asks for.
func newBacking(cfg Config) (backing, error) {
	if cfg.S3.Bucket == "" {
		return newFileBacking(cfg.Dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s3Timeout)
	defer cancel()
	return newS3Backing(ctx, cfg.S3, cfg.Dir)
}

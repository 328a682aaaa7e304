package uploads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
)

// fileBacking keeps uploads in a directory, with tusd's file store. The
// files of an upload, all named by its id:
//
//	Dir/<id>                    data (tusd's file store)
//	Dir/<id>.info               FileInfo as JSON, owner in its metadata (tusd)
//	Dir/<id>.sha256             saved SHA-256 state and the offset it covers
//	Dir/<id>.done               the completion was announced (events.go)
//	Dir/text/<id>.txt           text a processor made
//	Dir/quarantine/<id>{,.info} data and info of a checksum mismatch
type fileBacking struct {
	dir string
	fs  filestore.FileStore
}

func newFileBacking(dir string) (*fileBacking, error) {
	for _, d := range []string{dir, filepath.Join(dir, quarantineDir), filepath.Join(dir, textDir)} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("uploads: %w", err)
		}
	}
	return &fileBacking{dir: dir, fs: filestore.New(dir)}, nil
}

func (b *fileBacking) tus() tusStore { return b.fs }

// validID: tusd would join an id like "../x" or "quarantine/x" into Dir.
func (b *fileBacking) validID(id string) bool { return hexID(id) }

func (b *fileBacking) savesWithinChunk() bool { return true }

func (b *fileBacking) binPath(id string) string  { return filepath.Join(b.dir, id) }
func (b *fileBacking) infoPath(id string) string { return filepath.Join(b.dir, id+".info") }

func (b *fileBacking) sidePath(id string, k side) string {
	switch k {
	case sideText:
		return filepath.Join(b.dir, textDir, id+".txt")
	case sideDone:
		return filepath.Join(b.dir, id+".done")
	}
	return filepath.Join(b.dir, id+".sha256")
}

func (b *fileBacking) readInfo(_ context.Context, id string) (handler.FileInfo, error) {
	var info handler.FileInfo
	if !b.validID(id) {
		return info, ErrNotFound
	}
	data, err := os.ReadFile(b.infoPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, fmt.Errorf("uploads: %w", err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("uploads: %s.info: %w", id, err)
	}
	return info, nil
}

// load takes the offset from the data file's size (the .info's is not kept
// up to date) and the last activity from the later modification time. A
// missing data file counts as empty: the upload is broken and will expire.
func (b *fileBacking) load(ctx context.Context, id string) (handler.FileInfo, time.Time, error) {
	info, err := b.readInfo(ctx, id)
	if err != nil {
		return info, time.Time{}, err
	}
	fi, err := os.Stat(b.infoPath(id))
	if err != nil {
		return info, time.Time{}, err
	}
	modified := fi.ModTime()
	info.Offset = 0
	if bi, err := os.Stat(b.binPath(id)); err == nil {
		info.Offset = bi.Size()
		if bi.ModTime().After(modified) {
			modified = bi.ModTime()
		}
	}
	return info, modified, nil
}

func (b *fileBacking) scan(ctx context.Context, fn scanFunc) error {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".info")
		if !ok || !b.validID(id) {
			continue
		}
		if _, err := os.Stat(b.sidePath(id, sideDone)); err == nil {
			continue
		}
		info, modified, err := b.load(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		fn(id, info, modified, err)
	}
	return nil
}

func (b *fileBacking) readSide(_ context.Context, id string, k side) ([]byte, error) {
	data, err := os.ReadFile(b.sidePath(id, k))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return data, err
}

// writeSide writes a temporary file and renames it over the old one.
func (b *fileBacking) writeSide(_ context.Context, id string, k side, data []byte) error {
	path := b.sidePath(id, k)
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (b *fileBacking) openData(_ context.Context, id string, offset, n int64) (io.ReadCloser, error) {
	f, err := os.Open(b.binPath(id))
	if err != nil {
		return nil, err
	}
	if n < 0 {
		n = math.MaxInt64 - offset
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, n), f}, nil
}

func (b *fileBacking) firstBytes(ctx context.Context, id string, n int64) ([]byte, error) {
	r, err := b.openData(ctx, id, 0, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	first := make([]byte, n)
	if _, err := io.ReadFull(r, first); err != nil {
		return nil, err
	}
	return first, nil
}

// finish: a file store's upload is complete once its bytes are written.
func (b *fileBacking) finish(context.Context, string) error { return nil }

func (b *fileBacking) localPath(id string) string { return b.binPath(id) }

func (b *fileBacking) localFile(_ context.Context, id string) (string, func(), error) {
	return b.binPath(id), func() {}, nil
}

// remove deletes the .info first: without it the upload is gone for every
// node at once, and the janitor removes whatever a crash leaves behind it.
func (b *fileBacking) remove(_ context.Context, id string) error {
	var errs []error
	for _, p := range []string{b.infoPath(id), b.binPath(id), b.sidePath(id, sideHash), b.sidePath(id, sideText), b.sidePath(id, sideDone)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// quarantine moves the data first: if the .info moved first and the data
// move failed, remove would delete the evidence.
func (b *fileBacking) quarantine(ctx context.Context, id string) error {
	dir := filepath.Join(b.dir, quarantineDir)
	var errs []error
	for _, p := range []string{b.binPath(id), b.infoPath(id)} {
		if err := os.Rename(p, filepath.Join(dir, filepath.Base(p))); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return b.remove(ctx, id)
}

// sweepLeftovers removes files of uploads whose .info is gone and
// temporary files once older than age, and quarantined files once older
// than keep. A rename keeps the modification time, which for a
// quarantined upload is its last write, just before the quarantine.
func (b *fileBacking) sweepLeftovers(_ context.Context, now time.Time, age, keep time.Duration) ([]leftover, error) {
	var removed []leftover
	var errs []error
	for _, dir := range []string{b.dir, filepath.Join(b.dir, textDir), filepath.Join(b.dir, quarantineDir)} {
		quarantined := dir == filepath.Join(b.dir, quarantineDir)
		limit := age
		if quarantined {
			limit = keep
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || (!quarantined && strings.HasSuffix(name, ".info")) {
				continue
			}
			id, _, _ := strings.Cut(name, ".")
			if !b.validID(id) {
				continue
			}
			if !quarantined && !strings.HasSuffix(name, ".tmp") {
				if _, err := os.Stat(b.infoPath(id)); err == nil {
					continue
				}
			}
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < limit {
				continue
			}
			if err := os.Remove(filepath.Join(dir, name)); err == nil {
				removed = append(removed, leftover{name: name, quarantined: quarantined})
			}
		}
	}
	return removed, errors.Join(errs...)
}

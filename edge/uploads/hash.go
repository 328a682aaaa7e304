package uploads

// SHA-256 of every finished upload, without reading the file a second time
// when that can be avoided.
//
// WriteChunk tees the bytes it writes into a SHA-256 and, after the chunk
// and (on the file store) every 64 MiB within it, saves the digest's state
// (crypto/sha256's digest is an encoding.BinaryMarshaler) with the offset
// it covers beside the upload (<id>.sha256, see backing).
// The next chunk, in this process or on another node, resumes from it when
// the offset it covers is where the chunk starts. At completion:
//
//   - a state covering the whole file gives the sum at once;
//   - a state that is behind (a node crashed between writing bytes and
//     saving the state, or a write failed half-way) is resumed by reading
//     only the bytes after it: tus only ever appends, so the bytes it covers
//     are still the same;
//   - no state (it was lost or removed) means reading the whole file once.
//
// The bytes read in the last two cases are counted in
// edge_upload_hash_fallback_bytes_total, so one can see how often the
// state saved the read. A final concatenated upload is hashed while its
// partials are copied into it (see ConcatUploads), which is a read that
// happens anyway. The state files are not synced to disk: after a power
// loss the offset check throws away a state that does not match the file,
// and the client's own sha256 metadata (checked at completion) is the
// guard against a file that no longer holds the bytes that were sent.

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"sync"
)

// hashState is a saved SHA-256 state: the hash of the first covered
// bytes of an upload, and those bytes themselves while there are fewer
// than sniffLen, for the type check of an upload that arrives in tiny
// chunks (on S3 an unfinished upload cannot be read back).
type hashState struct {
	h       hash.Hash
	covered int64
	head    []byte
}

// loadState returns the saved state of upload id.
func (s *Service) loadState(ctx context.Context, id string) (hashState, bool) {
	b, err := s.back.readSide(ctx, id, sideHash)
	if err != nil || len(b) < 10 {
		return hashState{}, false
	}
	covered := int64(binary.BigEndian.Uint64(b[:8]))
	n := int(binary.BigEndian.Uint16(b[8:10]))
	if len(b) < 10+n {
		return hashState{}, false
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b[10 : 10+n]); err != nil {
		return hashState{}, false
	}
	head := b[10+n:]
	if covered < sniffLen && int64(len(head)) != covered {
		head = nil
	}
	return hashState{h: h, covered: covered, head: head}, true
}

// saveState saves h as covering the first covered bytes of upload id,
// with head, the first of those bytes, when covered < sniffLen. Record:
// covered (8 bytes), the state's length (2), the state, head.
func (s *Service) saveState(ctx context.Context, id string, h hash.Hash, covered int64, head []byte) error {
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 10+len(st)+len(head)), uint64(covered))
	b = binary.BigEndian.AppendUint16(b, uint16(len(st)))
	b = append(b, st...)
	if covered < sniffLen {
		b = append(b, head...)
	}
	return s.back.writeSide(ctx, id, sideHash, b)
}

// resumeHash returns the state to feed with bytes written at offset, or
// false when no saved state ends there; the sum is then completed by
// reading the data (see sum).
func (s *Service) resumeHash(ctx context.Context, id string, offset int64) (hashState, bool) {
	if offset == 0 {
		return hashState{h: sha256.New()}, true
	}
	st, ok := s.loadState(ctx, id)
	if !ok || st.covered != offset {
		return hashState{}, false
	}
	return st, true
}

// sum returns the SHA-256 of the first size bytes of upload id, from the
// saved state and as little reading as it allows, and saves the state as
// covering them so the next call is free.
func (s *Service) sum(ctx context.Context, id string, size int64) ([]byte, error) {
	st, ok := s.loadState(ctx, id)
	if !ok || st.covered > size {
		st = hashState{h: sha256.New()}
	}
	if st.covered < size {
		r, err := s.back.openData(ctx, id, st.covered, size-st.covered)
		if err != nil {
			return nil, fmt.Errorf("uploads: hashing %s: %w", id, err)
		}
		defer r.Close()
		n, err := io.Copy(st.h, io.LimitReader(r, size-st.covered))
		s.metrics.hashFallbackBytes.Add(uint64(n))
		if err == nil && n != size-st.covered {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("uploads: hashing %s: %w", id, err)
		}
		if err := s.saveState(ctx, id, st.h, size, nil); err != nil {
			s.log.Warn("UploadHashStateNotSaved", "upload", id, "error", err)
		}
	}
	return st.h.Sum(nil), nil
}

// defaultCheckpoint is how many bytes of one chunk are hashed between two
// saves of the state. tus-js-client sends a whole file in one PATCH by
// default: without saves within it, a node dying half-way through a 1 GiB
// PATCH would leave no state, and completion would read the whole file.
// A save costs a small file write; this bounds the re-read to 64 MiB.
const defaultCheckpoint = 64 << 20

// teeHash is the writer a chunk's bytes are teed into on their way to the
// file: it feeds h and saves h's state every s.checkpoint bytes.
//
// The hashing runs on its own goroutine, fed copies of the buffers: done
// in line it added its whole cost to every byte's way to disk (the upload
// ran at about half of tusd's own speed); beside the copy to the file, on
// the other core, it costs little. A few buffers in flight bound the
// memory.
//
// Saving before hashing p is what makes a save true: the file store copies
// with io.Copy, which writes each buffer before it reads the next, so when
// the bytes p are read every byte fed before them is in the file. A save
// first waits for the hashing goroutine to catch up.
type teeHash struct {
	s          *Service
	ctx        context.Context
	id         string
	h          hash.Hash
	head       []byte // the upload's first bytes, up to sniffLen
	offset     int64  // of the chunk's first byte
	fed        int64  // bytes fed so far
	saved      int64  // fed at the last save
	checkpoint int64  // bytes between saves within the chunk

	work    chan *[]byte  // buffers to hash; nil asks for a sign when all before it are hashed
	synced  chan struct{} // the sign
	stopped chan struct{} // closed when the hashing goroutine ends
}

// hashBufs are the copies in flight to the hashing goroutine.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// hashQueue is how many buffers may wait for the hashing goroutine.
const hashQueue = 8

func newTeeHash(ctx context.Context, s *Service, id string, st hashState, offset int64) *teeHash {
	t := &teeHash{
		s: s, ctx: ctx, id: id, h: st.h, head: st.head, offset: offset, checkpoint: s.checkpoint,
		work: make(chan *[]byte, hashQueue), synced: make(chan struct{}), stopped: make(chan struct{}),
	}
	if !s.back.savesWithinChunk() {
		t.checkpoint = math.MaxInt64
	}
	go t.hashLoop()
	return t
}

func (t *teeHash) hashLoop() {
	defer close(t.stopped)
	for b := range t.work {
		if b == nil {
			t.synced <- struct{}{}
			continue
		}
		t.h.Write(*b) // a hash.Hash never returns an error
		hashBufs.Put(b)
	}
}

func (t *teeHash) Write(p []byte) (int, error) {
	if t.fed-t.saved >= t.checkpoint {
		t.sync()
		t.store()
	}
	if len(t.head) < sniffLen {
		t.head = append(t.head, p[:min(len(p), sniffLen-len(t.head))]...)
	}
	b := hashBufs.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	t.work <- b
	t.fed += int64(len(p))
	return len(p), nil
}

// sync waits until every byte fed so far is hashed.
func (t *teeHash) sync() {
	t.work <- nil
	<-t.synced
}

// finish hashes what is left and ends the hashing goroutine; the tee must
// not be written to afterwards.
func (t *teeHash) finish() {
	close(t.work)
	<-t.stopped
}

// store saves the state as covering the bytes fed so far; every one of
// them must be hashed (sync or finish first).
func (t *teeHash) store() {
	if err := t.s.saveState(t.ctx, t.id, t.h, t.offset+t.fed, t.head); err != nil {
		t.s.log.Warn("UploadHashStateNotSaved", "upload", t.id, "error", err)
	}
	t.saved = t.fed
}

// teeReader feeds what it reads to a teeHash, like io.TeeReader, and also
// copies itself out in large pieces: the file store copies with io.Copy,
// which prefers a source's WriteTo, so a chunk moves 512 KiB per read and
// write instead of io.Copy's 32 KiB, with a sixteenth of the syscalls and
// hand-offs to the hashing goroutine.
type teeReader struct {
	r io.Reader
	t *teeHash
}

// copyBufs are teeReader.WriteTo's buffers. 512 KiB measured best (see
// docs/BENCHMARKS.md): a piece is copied three times on its way (socket to
// buffer, buffer to the hash's copy, buffer to the page cache), and at
// 1 MiB it no longer stays in a core's L2 cache between the copies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 512<<10); return &b }}

func (tr *teeReader) Read(p []byte) (int, error) {
	n, err := tr.r.Read(p)
	if n > 0 {
		tr.t.Write(p[:n])
	}
	return n, err
}

// WriteTo hashes each piece as it is read, before it is written, as Read
// does: teeHash's saves rely on that order.
func (tr *teeReader) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := tr.r.Read(buf)
		if n > 0 {
			tr.t.Write(buf[:n])
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m < n {
				return total, io.ErrShortWrite
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

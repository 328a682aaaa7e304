package uploads

import (
	"bytes"
	"context"
	"io"
	"mime"
	"strings"

	"github.com/edge-rt/edge/edge/uploads/process"
	"github.com/tus/tusd/v2/pkg/handler"
)

// sniffLen is how many first bytes the type check needs.
const sniffLen = process.SniffLen

// write appends src at offset: it checks the type of the first bytes once
// they are all there, and feeds the running SHA-256 (see hash.go).
func (u *upload) write(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	s := u.s
	info, err := u.inner.GetInfo(ctx)
	if err != nil {
		return 0, err
	}
	// A partial upload is a slice of some file: its first bytes say nothing
	// of the file's type, and it is never published or processed. Its final
	// upload is sniffed and hashed as the partials are copied into it.
	if info.IsPartial {
		return u.inner.WriteChunk(ctx, offset, src)
	}
	if len(s.cfg.AllowedTypes) > 0 && offset < sniffLen {
		if src, err = u.sniff(ctx, info, offset, src); err != nil {
			return 0, err
		}
	}
	st, ok := s.resumeHash(ctx, u.id, offset)
	if !ok {
		return u.inner.WriteChunk(ctx, offset, src)
	}
	tee := newTeeHash(ctx, s, u.id, st, offset)
	n, err := u.inner.WriteChunk(ctx, offset, &teeReader{r: src, t: tee})
	tee.finish()
	// The hash has seen every byte that was read, written or not. Only when
	// that is exactly what reached the file does it describe the file;
	// otherwise the last save stays, behind, and completion reads the rest.
	if n > 0 && tee.fed == n {
		tee.store()
	}
	return n, err
}

// sniff checks the media type of the upload's first bytes once it has them
// all: 512 bytes, or the whole upload when it is shorter. A chunk that
// ends before then is let through and the next chunk checks, with the
// bytes already on disk in front. On a type that is not allowed the upload
// is removed and nothing of the chunk is written.
func (u *upload) sniff(ctx context.Context, info handler.FileInfo, offset int64, src io.Reader) (io.Reader, error) {
	want := sniffLen - offset
	if !info.SizeIsDeferred && info.Size-offset < want {
		want = info.Size - offset
	}
	head := make([]byte, want)
	// A short read is the end of this chunk's body, or a broken body that
	// tusd reports; either way the bytes read so far are still written.
	n, _ := io.ReadFull(src, head)
	head = head[:n]
	rest := io.MultiReader(bytes.NewReader(head), src)
	end := offset + int64(n)
	if end < sniffLen && (info.SizeIsDeferred || end < info.Size) {
		return rest, nil
	}
	first, err := u.firstBytes(ctx, offset)
	if err != nil {
		return nil, err
	}
	mt := process.Sniff(append(first, head...))
	if u.s.allowed(mt) {
		return rest, nil
	}
	err = errContentNotAllowed(mt)
	u.s.refused(err)
	u.s.fail(ctx, info, "content type "+mt+" not allowed")
	if rerr := u.s.remove(ctx, u.id); rerr != nil {
		u.s.log.Error("UploadRemoveFailed", "upload", u.id, "error", rerr)
	}
	return nil, err
}

// firstBytes returns the upload's first n bytes, all already stored: from
// the saved hash state, which keeps them (see hashState), or else read
// back from the backing.
func (u *upload) firstBytes(ctx context.Context, n int64) ([]byte, error) {
	first := make([]byte, n, sniffLen)
	if n == 0 {
		return first, nil
	}
	if st, ok := u.s.loadState(ctx, u.id); ok && st.covered == n && st.head != nil {
		return append(first[:0], st.head...), nil
	}
	return u.s.back.firstBytes(ctx, u.id, n)
}

// allowed reports whether media type mt (parameters allowed) matches one of
// the configured patterns.
func (s *Service) allowed(mt string) bool {
	if len(s.cfg.AllowedTypes) == 0 {
		return true
	}
	base, _, err := mime.ParseMediaType(mt)
	if err != nil {
		return false
	}
	for _, p := range s.cfg.AllowedTypes {
		p = strings.ToLower(p)
		switch {
		case p == "*/*":
			return true
		case strings.HasSuffix(p, "/*"):
			if strings.HasPrefix(base, p[:len(p)-1]) {
				return true
			}
		case p == base:
			return true
		}
	}
	return false
}

// validPattern reports whether p is "type/subtype", "type/*" or "*/*".
func validPattern(p string) bool {
	typ, sub, ok := strings.Cut(p, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(sub, "/;") {
		return false
	}
	return typ != "*" || sub == "*"
}

package uploads

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tus/tusd/v2/pkg/handler"
)

// The files of an upload, all named by its id:
//
//	Dir/<id>                   data (tusd's file store)
//	Dir/<id>.info              FileInfo as JSON, owner in its metadata (tusd)
//	Dir/<id>.sha256            saved SHA-256 state and the offset it covers
//	Dir/text/<id>.txt          text a processor made
//	Dir/quarantine/<id>{,.info} data and info of a checksum mismatch
const (
	quarantineDir = "quarantine"
	textDir       = "text"
)

func (s *Service) binPath(id string) string   { return filepath.Join(s.cfg.Dir, id) }
func (s *Service) infoPath(id string) string  { return filepath.Join(s.cfg.Dir, id+".info") }
func (s *Service) textPath(id string) string  { return filepath.Join(s.cfg.Dir, textDir, id+".txt") }
func (s *Service) stateFile(id string) string { return filepath.Join(s.cfg.Dir, id+".sha256") }

// validID reports whether id has the form this service gives uploads (32
// hex digits). Anything else is refused before it reaches a path: tusd
// would join an id like "../x" or "quarantine/x" into Dir.
func validID(id string) bool {
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

// readInfo reads upload id's .info file as tusd wrote it.
func (s *Service) readInfo(id string) (handler.FileInfo, error) {
	var info handler.FileInfo
	if !validID(id) {
		return info, ErrNotFound
	}
	b, err := os.ReadFile(s.infoPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return info, ErrNotFound
	}
	if err != nil {
		return info, fmt.Errorf("uploads: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("uploads: %s.info: %w", id, err)
	}
	return info, nil
}

// finished reports whether every byte of the upload is there.
func finished(info handler.FileInfo) bool {
	return !info.SizeIsDeferred && info.Offset == info.Size
}

package process

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
)

// sniffLen is how many bytes net/http.DetectContentType considers.
const sniffLen = 512

// sniffFile returns the media type of the file at path by its first bytes,
// without parameters ("text/plain", not "text/plain; charset=utf-8").
func sniffFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, sniffLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	return sniff(buf[:n]), nil
}

// sniff returns the media type of data by its first bytes.
func sniff(data []byte) string {
	// DetectContentType knows no TIFF (browsers don't show it), and
	// tesseract reads it: scanners write it.
	if bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*")) {
		return "image/tiff"
	}
	mt, _, err := mime.ParseMediaType(http.DetectContentType(data))
	if err != nil {
		return "application/octet-stream"
	}
	return mt
}

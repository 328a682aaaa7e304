package process

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
)

// SniffLen is how many bytes net/http.DetectContentType considers, and so
// how many of a file's first bytes Sniff needs.
const SniffLen = 512

// sniffFile returns the media type of the file at path by its first bytes,
// without parameters ("text/plain", not "text/plain; charset=utf-8").
func sniffFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, SniffLen)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	return Sniff(buf[:n]), nil
}

// Sniff returns the media type of data by its first bytes, without
// parameters ("text/plain", not "text/plain; charset=utf-8"). The upload
// service checks allowed types with it and the OCR processor its input, so
// both agree on what a file is.
func Sniff(data []byte) string {
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

package process

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The words of the test images, chosen so that tesseract cannot find them
// by accident: a word, an acronym, and a number.
var (
	page1Words = []string{"EDGE", "OCR", "4217"}
	page2Words = []string{"SECOND", "PAGE", "9051"}
)

// needConvert skips the test when ImageMagick's convert is missing, because
// then the test image cannot be made. scripts/test-deps.sh installs it, so
// under `make test` this never skips. A convert that is not ImageMagick's
// (GraphicsMagick's, a stand-in) counts as missing.
func needConvert(t *testing.T) {
	t.Helper()
	out, err := exec.Command("convert", "-version").Output()
	if err != nil || !bytes.HasPrefix(out, []byte("Version: ImageMagick")) {
		t.Skip("SKIPPED: ImageMagick's convert is not installed, so no test image can be made " +
			"(scripts/test-deps.sh installs it; Debian: apt-get install imagemagick)")
	}
}

// textImage writes an image showing words in black on white, in the format
// the file extension of name says, and returns its path.
func textImage(t *testing.T, dir, name string, words []string) string {
	t.Helper()
	needConvert(t)
	path := filepath.Join(dir, name)
	// 8-bit grey without alpha, like a scan: by default ImageMagick's Q16
	// build writes a 16-bit grey-and-alpha TIFF, which tesseract's image
	// library reads as a blank page.
	cmd := exec.Command("convert", "-size", "800x200", "xc:white", "-font", "DejaVu-Sans",
		"-pointsize", "48", "-fill", "black", "-annotate", "+20+120", strings.Join(words, " "),
		"-alpha", "off", "-depth", "8", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("convert: %v\n%s", err, out)
	}
	return path
}

// newOCR returns the real OCR processor; the test fails (it does not skip)
// when the tools are missing, as the Redis tests do without redis-server.
func newOCR(t *testing.T, opts OCROptions) *OCR {
	t.Helper()
	o, err := NewOCR(opts)
	if err != nil {
		t.Fatalf("NewOCR: %v (scripts/test-deps.sh installs tesseract-ocr, tesseract-ocr-eng and poppler-utils)", err)
	}
	return o
}

func wantWords(t *testing.T, text string, words []string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("text %q lacks %q", text, w)
		}
	}
}

// TestOCR recognises the same text in every accepted format, a PDF made
// from the PNG included.
func TestOCR(t *testing.T) {
	t.Parallel()
	for _, ext := range []string{"png", "jpg", "tif", "gif", "webp", "pdf"} {
		t.Run(ext, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pngPath := textImage(t, dir, "in.png", page1Words)
			path := pngPath
			switch ext {
			case "png":
			case "pdf":
				path = filepath.Join(dir, "in.pdf")
				writePDF(t, path, pngPath)
			default:
				path = textImage(t, dir, "in."+ext, page1Words)
			}
			tmp := t.TempDir()
			o := newOCR(t, OCROptions{TempDir: tmp})
			// The declared type is wrong on purpose: only the bytes count.
			j := Job{ID: "u1", Path: path, Filename: "x.txt", Filetype: "text/plain"}
			if !o.Accepts(j) {
				t.Fatalf("Accepts(%s) = false", ext)
			}
			res, err := o.Process(t.Context(), j)
			if err != nil {
				t.Fatal(err)
			}
			if res.Processor != "ocr" {
				t.Errorf("Processor = %q, want ocr", res.Processor)
			}
			if res.Text != strings.TrimSpace(res.Text) {
				t.Errorf("text %q is not trimmed", res.Text)
			}
			wantWords(t, res.Text, page1Words)
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestOCRPDFPages joins pages with a form feed and stops at MaxPages.
func TestOCRPDFPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pdf := filepath.Join(dir, "two.pdf")
	writePDF(t, pdf, textImage(t, dir, "p1.png", page1Words), textImage(t, dir, "p2.png", page2Words))

	for _, tc := range []struct {
		maxPages int
		want     [][]string // words per page
	}{
		{maxPages: 0, want: [][]string{page1Words, page2Words}},
		{maxPages: 1, want: [][]string{page1Words}},
	} {
		t.Run("max"+strconv.Itoa(tc.maxPages), func(t *testing.T) {
			t.Parallel()
			o := newOCR(t, OCROptions{MaxPages: tc.maxPages})
			res, err := o.Process(t.Context(), Job{ID: "u2", Path: pdf})
			if err != nil {
				t.Fatal(err)
			}
			pages := strings.Split(res.Text, "\f")
			if len(pages) != len(tc.want) {
				t.Fatalf("%d pages in %q, want %d", len(pages), res.Text, len(tc.want))
			}
			for i, words := range tc.want {
				wantWords(t, pages[i], words)
			}
		})
	}
}

// TestOCRAccepts judges by the first bytes, whatever the declared type. It
// needs no tools.
func TestOCRAccepts(t *testing.T) {
	t.Parallel()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	encode := func(f func(*bytes.Buffer) error) []byte {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	pngData := encode(func(b *bytes.Buffer) error { return png.Encode(b, img) })
	jpegData := encode(func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) })
	gifData := encode(func(b *bytes.Buffer) error {
		return gif.Encode(b, image.NewPaletted(img.Rect, color.Palette{color.White, color.Black}), nil)
	})

	for _, tc := range []struct {
		name     string
		data     []byte // nil: no file at all
		filetype string
		want     bool
	}{
		{"png", pngData, "image/png", true},
		{"png declared as text", pngData, "text/plain", true},
		{"jpeg", jpegData, "image/jpeg", true},
		{"gif", gifData, "", true},
		{"tiff little-endian", []byte("II*\x00\x08\x00\x00\x00"), "image/tiff", true},
		{"tiff big-endian", []byte("MM\x00*\x00\x00\x00\x08"), "image/tiff", true},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), "image/webp", true},
		{"pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "application/pdf", true},
		{"text declared as png", []byte("/etc/passwd\n/etc/shadow\n"), "image/png", false},
		{"html", []byte("<!DOCTYPE html><html><body>hi</body></html>"), "image/png", false},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00"), "application/pdf", false},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`), "image/svg+xml", false},
		{"pdf not at the start", []byte("junk\n%PDF-1.7\n"), "application/pdf", false},
		{"empty", []byte{}, "image/png", false},
		{"missing file", nil, "image/png", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "upload")
			if tc.data != nil {
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := (&OCR{}).Accepts(Job{Path: path, Filetype: tc.filetype}); got != tc.want {
				t.Errorf("Accepts = %v, want %v", got, tc.want)
			}
			// The same judgement from the first bytes alone, before a
			// remote upload is fetched.
			if tc.data != nil {
				if got := (&OCR{}).Accepts(Job{Head: tc.data, Filetype: tc.filetype}); got != tc.want {
					t.Errorf("Accepts by Head = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// fakeOCR returns an OCR processor whose tools are the slowTool stand-in.
func fakeOCR(t *testing.T, opts OCROptions) *OCR {
	t.Helper()
	opts.Tesseract = filepath.Join(fakeTools, "slowtool")
	opts.Pdftoppm = filepath.Join(fakeTools, "slowtool")
	o, err := NewOCR(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestOCRProcessRefusesOtherFiles: Process checks the bytes itself, so a
// text file never reaches tesseract (which would read it as a list of image
// paths to open).
func TestOCRProcessRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte("/etc/hostname\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := fakeOCR(t, OCROptions{}).Process(t.Context(), Job{ID: "u3", Path: path, Filetype: "image/png"})
	if !errors.Is(err, ErrNotAccepted) {
		t.Fatalf("err = %v, want ErrNotAccepted", err)
	}
	if _, err := os.Stat(path + ".child"); err == nil {
		t.Error("the tool ran")
	}
}

// TestOCRTimeoutKillsTool: a stuck tool and the child it started are
// killed when the context ends, at once rather than after waitDelay, and
// the PDF's temporary directory is removed.
func TestOCRTimeoutKillsTool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data string }{
		{"tesseract", "\x89PNG\r\n\x1a\n"},
		{"pdftoppm", "%PDF-1.4\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "upload")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			o := fakeOCR(t, OCROptions{TempDir: tmp})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := o.Process(ctx, Job{ID: "u4", Path: path})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > waitDelay-time.Second {
				t.Errorf("Process returned after %v: the child kept the pipe open until waitDelay", d)
			}
			pid, err := os.ReadFile(path + ".child")
			if err != nil {
				t.Fatalf("the tool did not start its child: %v", err)
			}
			waitFor(t, "the tool's child to die", func() bool { return !alive(strings.TrimSpace(string(pid))) })
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// alive reports whether a process runs (a zombie does not: in a container
// nobody may reap it).
func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || syscall.Kill(n, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z")
}

func TestNewOCRErrors(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(fakeTools, "slowtool")
	for _, tc := range []struct {
		name    string
		opts    OCROptions
		missing bool // errors.Is(err, ErrToolMissing)
	}{
		{"no tesseract", OCROptions{Tesseract: "edge-no-such-tesseract", Pdftoppm: fake}, true},
		{"no pdftoppm", OCROptions{Tesseract: fake, Pdftoppm: "edge-no-such-pdftoppm"}, true},
		{"no language data", OCROptions{Tesseract: fake, Pdftoppm: fake, Languages: "eng+deu"}, true},
		{"languages as a flag", OCROptions{Tesseract: fake, Pdftoppm: fake, Languages: "--psm"}, false},
		{"languages with a space", OCROptions{Tesseract: fake, Pdftoppm: fake, Languages: "eng deu"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := NewOCR(tc.opts)
			if err == nil {
				t.Fatalf("NewOCR = %v, want an error", o)
			}
			if errors.Is(err, ErrToolMissing) != tc.missing {
				t.Errorf("err = %v; errors.Is(err, ErrToolMissing) = %v, want %v", err, !tc.missing, tc.missing)
			}
		})
	}
}

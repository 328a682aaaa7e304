package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OCR recognises the text of images and PDFs with the tesseract CLI. PDFs
// are rendered first with pdftoppm, one 300 dpi image per page; the texts of
// the pages are joined with a form feed, as tesseract itself separates
// pages.
type OCR struct {
	langs     string
	tesseract string
	pdftoppm  string
	maxPages  int
	tempDir   string
	env       []string
}

var _ Processor = (*OCR)(nil)

// OCROptions configures OCR. Zero means default.
type OCROptions struct {
	// Languages are tesseract's language codes joined with '+'. Default
	// "eng".
	Languages string
	// Tesseract is the tesseract binary, a name looked up in PATH or a
	// path. Default "tesseract".
	Tesseract string
	// Pdftoppm is poppler's pdftoppm binary. Default "pdftoppm".
	Pdftoppm string
	// MaxPages is how many pages of a PDF are read; later pages are
	// ignored. Default 50.
	MaxPages int
	// TempDir is where PDF pages are rendered, up to about a megabyte a
	// page, and removed after. Default os.TempDir().
	TempDir string
}

// ocrTypes are the media types OCR accepts, by sniffing: what tesseract's
// image library reads, and PDF.
var ocrTypes = map[string]bool{
	"image/png":       true,
	"image/jpeg":      true,
	"image/tiff":      true,
	"image/webp":      true,
	"image/gif":       true,
	"application/pdf": true,
}

// pdfDPI is the resolution PDF pages are rendered at: what tesseract is
// tuned for. Lower loses small print; higher costs time for nothing.
const pdfDPI = 300

// langsSyntax is what Languages may look like. It is configuration, not user
// input, but it becomes an argument, so it must not be able to be a flag.
var langsSyntax = regexp.MustCompile(`^[A-Za-z0-9_/]+(\+[A-Za-z0-9_/]+)*$`)

// NewOCR returns an OCR processor, or an error wrapping ErrToolMissing when
// tesseract, pdftoppm or the language data is not installed, so that a node
// with OCR enabled fails at start rather than on every upload.
func NewOCR(opts OCROptions) (*OCR, error) {
	if opts.Languages == "" {
		opts.Languages = "eng"
	}
	if opts.Tesseract == "" {
		opts.Tesseract = "tesseract"
	}
	if opts.Pdftoppm == "" {
		opts.Pdftoppm = "pdftoppm"
	}
	if opts.MaxPages <= 0 {
		opts.MaxPages = 50
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if !langsSyntax.MatchString(opts.Languages) {
		return nil, fmt.Errorf("process: ocr: invalid languages %q (codes joined with '+', such as eng+deu)", opts.Languages)
	}
	tesseract, err := exec.LookPath(opts.Tesseract)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (Debian: apt-get install tesseract-ocr)", ErrToolMissing, err)
	}
	pdftoppm, err := exec.LookPath(opts.Pdftoppm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (Debian: apt-get install poppler-utils)", ErrToolMissing, err)
	}
	o := &OCR{
		langs:     opts.Languages,
		tesseract: tesseract,
		pdftoppm:  pdftoppm,
		maxPages:  opts.MaxPages,
		tempDir:   opts.TempDir,
		// tesseract starts an OpenMP thread per core by default; with
		// several jobs at once they fight over the cores and all get
		// slower. The Runner's concurrency is the parallelism.
		env: append(os.Environ(), "OMP_THREAD_LIMIT=1"),
	}
	if err := o.checkLanguages(); err != nil {
		return nil, err
	}
	return o, nil
}

// checkLanguages fails unless tesseract has data for every language.
func (o *OCR) checkLanguages() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runTool(ctx, o.env, o.tesseract, "--list-langs")
	if err != nil {
		return fmt.Errorf("process: ocr: %w", err)
	}
	// The first line is a heading naming the data directory.
	have := strings.Fields(string(out))
	for _, lang := range strings.Split(o.langs, "+") {
		if !slices.Contains(have, lang) {
			return fmt.Errorf("%w: tesseract has no data for language %q (Debian: the tesseract-ocr-%s package)",
				ErrToolMissing, lang, strings.ReplaceAll(strings.ToLower(lang), "_", "-"))
		}
	}
	return nil
}

// Name returns "ocr".
func (o *OCR) Name() string { return "ocr" }

// Accepts reports whether j's file is an image tesseract reads or a PDF,
// by its first bytes (Head when there is no Path yet): the client's
// Filetype is only a claim.
func (o *OCR) Accepts(j Job) bool {
	if j.Path == "" {
		return ocrTypes[Sniff(j.Head)]
	}
	mt, err := sniffFile(j.Path)
	return err == nil && ocrTypes[mt]
}

// Process returns the text of j's file, trimmed.
func (o *OCR) Process(ctx context.Context, j Job) (Result, error) {
	// tesseract takes no "--": an absolute path starts with '/' and so can
	// never be read as a flag.
	path, err := filepath.Abs(j.Path)
	if err != nil {
		return Result{}, fmt.Errorf("process: ocr: %w", err)
	}
	// Sniffed again, not taken from Accepts: the type picks the tool, and
	// tesseract given a text file reads it as a list of image paths to
	// open, which must never happen with an uploaded file.
	mt, err := sniffFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("process: ocr: %w", err)
	}
	var text string
	switch {
	case mt == "application/pdf":
		text, err = o.pdf(ctx, path)
	case ocrTypes[mt]:
		text, err = o.image(ctx, path)
	default:
		return Result{}, fmt.Errorf("%w: ocr of %s", ErrNotAccepted, mt)
	}
	if err != nil {
		return Result{}, fmt.Errorf("process: ocr of upload %s: %w", j.ID, err)
	}
	return Result{Processor: o.Name(), Text: strings.TrimSpace(text)}, nil
}

// image runs tesseract on one image file (all frames of a multi-page TIFF
// or GIF, which tesseract separates with form feeds).
func (o *OCR) image(ctx context.Context, path string) (string, error) {
	out, err := runTool(ctx, o.env, o.tesseract, path, "stdout", "-l", o.langs)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// pdf renders up to maxPages pages into a temporary directory, which it
// removes, and recognises them one by one.
func (o *OCR) pdf(ctx context.Context, path string) (string, error) {
	dir, err := os.MkdirTemp(o.tempDir, "edge-ocr-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	// Grey, because tesseract works on grey anyway and the files are a
	// third the size.
	if _, err := runTool(ctx, o.env, o.pdftoppm,
		"-r", strconv.Itoa(pdfDPI), "-png", "-gray", "-l", strconv.Itoa(o.maxPages),
		"--", path, filepath.Join(dir, "page")); err != nil {
		return "", err
	}
	pages, err := renderedPages(dir)
	if err != nil {
		return "", err
	}
	texts := make([]string, 0, len(pages))
	for _, page := range pages {
		text, err := o.image(ctx, page)
		if err != nil {
			return "", fmt.Errorf("page %d: %w", len(texts)+1, err)
		}
		texts = append(texts, strings.TrimSpace(text))
	}
	return strings.Join(texts, "\f"), nil
}

// renderedPages lists pdftoppm's page images in page order. pdftoppm names
// them page-1.png or page-01.png (zero-padded to the width of the last page
// number), so they are sorted by number, not by name.
func renderedPages(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if err != nil {
		return nil, err
	}
	type page struct {
		n    int
		path string
	}
	pages := make([]page, 0, len(paths))
	for _, p := range paths {
		num := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "page-"), ".png")
		n, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("pdftoppm wrote an unexpected file %q", filepath.Base(p))
		}
		pages = append(pages, page{n, p})
	}
	if len(pages) == 0 {
		return nil, errors.New("pdftoppm rendered no pages")
	}
	slices.SortFunc(pages, func(a, b page) int { return a.n - b.n })
	out := make([]string, len(pages))
	for i, p := range pages {
		out[i] = p.path
	}
	return out, nil
}

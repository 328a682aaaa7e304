package process

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	_ "image/png"
	"os"
	"testing"
)

// writePDF writes a PDF with one page per image file, each image filling
// its page at 300 dpi (so pdftoppm gives back the same pixels).
//
// The tests build PDFs themselves because ImageMagick cannot: Debian's
// policy.xml forbids its PDF coder ("attempt to perform an operation not
// allowed by the security policy"), and a test must not depend on a
// machine's ImageMagick policy.
func writePDF(t *testing.T, path string, images ...string) {
	t.Helper()
	var buf bytes.Buffer
	var offsets []int // of objects 1..n, for the cross-reference table
	obj := func(body string, stream []byte) {
		offsets = append(offsets, buf.Len())
		fmt.Fprintf(&buf, "%d 0 obj\n%s\n", len(offsets), body)
		if stream != nil {
			buf.WriteString("stream\n")
			buf.Write(stream)
			buf.WriteString("\nendstream\n")
		}
		buf.WriteString("endobj\n")
	}

	buf.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	// Objects: 1 catalog, 2 pages, then per page: page, image, contents.
	kids := ""
	for i := range images {
		kids += fmt.Sprintf("%d 0 R ", 3+3*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, len(images)), nil)
	for i, file := range images {
		gray, w, h := grayPixels(t, file)
		// Points are 1/72 inch; the image is meant at 300 dpi.
		pw, ph := float64(w)*72/300, float64(h)*72/300
		img, contents := 4+3*i, 5+3*i
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] "+
			"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>", pw, ph, img, contents), nil)
		obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "+
			"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>", w, h, len(gray)), gray)
		draw := fmt.Sprintf("q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q", pw, ph)
		obj(fmt.Sprintf("<< /Length %d >>", len(draw)), []byte(draw))
	}
	xref := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(&buf, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// grayPixels decodes an image file and returns its pixels as 8-bit grey,
// zlib-compressed, with its size.
func grayPixels(t *testing.T, file string) (data []byte, w, h int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	b := img.Bounds()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	row := make([]byte, b.Dx())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			row[x-b.Min.X] = color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
		}
		zw.Write(row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes(), b.Dx(), b.Dy()
}

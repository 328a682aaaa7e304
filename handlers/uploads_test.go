package handlers

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-rt/edge/edge/auth"
)

// tusRequest sends one tus request as the holder of tok.
func (s *testServer) tusRequest(t *testing.T, tok, method, path string, header map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	req.Header.Set("Tus-Resumable", "1.0.0")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// create makes an upload of size bytes and returns its path.
func (s *testServer) create(t *testing.T, tok string, size string, extra map[string]string) string {
	t.Helper()
	h := map[string]string{"Upload-Length": size, "Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("a.txt"))}
	for k, v := range extra {
		h[k] = v
	}
	resp := s.tusRequest(t, tok, "POST", "/v1/uploads/", h, "")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	i := strings.Index(loc, "/v1/uploads/")
	if i < 0 {
		t.Fatalf("Location %q is not under /v1/uploads/", loc)
	}
	return loc[i:]
}

func TestUploadsBelongToTheirCreator(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	alice := mint(t, auth.Claims{Subject: "alice"}, time.Hour)
	bob := mint(t, auth.Claims{Subject: "bob"}, time.Hour)
	up := s.create(t, alice, "5", nil)

	patch := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
	for _, m := range []string{"HEAD", "GET", "DELETE"} {
		if resp := s.tusRequest(t, bob, m, up, nil, ""); resp.StatusCode != 404 {
			t.Errorf("bob %s alice's upload: %d, want 404", m, resp.StatusCode)
		}
	}
	if resp := s.tusRequest(t, bob, "PATCH", up, patch, "hello"); resp.StatusCode != 404 {
		t.Errorf("bob PATCH alice's upload: %d, want 404", resp.StatusCode)
	}
	// Nor can bob take alice's part into a concatenation of his own.
	final := map[string]string{"Upload-Concat": "final;" + s.URL + up}
	if resp := s.tusRequest(t, bob, "POST", "/v1/uploads/", final, ""); resp.StatusCode != 404 {
		t.Errorf("bob concatenating alice's upload: %d, want 404", resp.StatusCode)
	}
	// Without a token, nothing; with an API key, no uploads.
	if resp := s.tusRequest(t, "", "HEAD", up, nil, ""); resp.StatusCode != 401 {
		t.Errorf("HEAD without a token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", s.URL+"/v1/uploads/", nil)
	req.Header.Set("X-Api-Key", testAPIKey)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "5")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, 403, "forbidden")

	// Alice's upload is untouched and completes.
	if resp := s.tusRequest(t, alice, "PATCH", up, patch, "hello"); resp.StatusCode != 204 || resp.Header.Get("Upload-Offset") != "5" {
		t.Fatalf("alice PATCH: %d offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
	if resp := s.tusRequest(t, alice, "HEAD", up, nil, ""); resp.StatusCode != 200 || resp.Header.Get("Upload-Offset") != "5" {
		t.Fatalf("alice HEAD: %d offset %q", resp.StatusCode, resp.Header.Get("Upload-Offset"))
	}
}

func TestUploadID(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"/v1/uploads/":         "",
		"/v1/uploads":          "",
		"/v1/uploads/abc":      "abc",
		"/v1/uploads/abc/text": "abc",
		"/v1/uploads/../x":     "",
		"/v1/uploads//abc":     "abc",
		"/v1/other/abc":        "",
	}
	for p, want := range cases {
		if got := uploadID(p, "/v1/uploads/"); got != want {
			t.Errorf("uploadID(%q) = %q, want %q", p, got, want)
		}
	}
}

// TestTusRefusalsAreJSON: tusd's plain-text refusals reach clients in
// Edge's error shape, with their status and tus headers.
func TestTusRefusalsAreJSON(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testStream)
	alice := mint(t, auth.Claims{Subject: "alice"}, time.Hour)
	req, _ := http.NewRequest("POST", s.URL+"/v1/uploads/", nil)
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "not-a-number")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Tus-Resumable") != "1.0.0" {
		t.Errorf("tus header lost: %v", resp.Header)
	}
	wantError(t, resp, 400, "invalid_upload_length")
}

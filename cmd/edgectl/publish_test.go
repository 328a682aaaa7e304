package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	var gotBody publishBody
	var gotHeader http.Header
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHeader = r.URL.EscapedPath(), r.Header.Clone()
		json.NewDecoder(r.Body).Decode(&gotBody)
		if gotBody.Type == "bad" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"invalid","message":"no"}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"topic":"org:a","seq":1,"id":"x"}`)
	}))
	defer srv.Close()

	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"publish", "--server", srv.URL, "--token", "tok", "--topic", "org:a",
		"--type", "order.created", "--idempotency-key", "k1", "-"},
		strings.NewReader(` {"n": 1} `+"\n"), &out, &errOut)
	if code != exitOK || out.String() != `{"topic":"org:a","seq":1,"id":"x"}`+"\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if gotPath != "/v1/topics/org:a/events" || gotBody.Type != "order.created" || string(gotBody.Data) != `{"n":1}` || gotBody.Ephemeral {
		t.Errorf("server got %s %+v (data %s)", gotPath, gotBody, gotBody.Data)
	}
	if gotHeader.Get("Authorization") != "Bearer tok" || gotHeader.Get("Idempotency-Key") != "k1" {
		t.Errorf("headers %v", gotHeader)
	}

	out.Reset()
	errOut.Reset()
	code = run(t.Context(), []string{"publish", "--server", srv.URL, "--topic", "a", "--type", "bad", "1"}, nil, &out, &errOut)
	if code != exitFail || out.Len() != 0 || !strings.Contains(errOut.String(), `"code":"invalid"`) {
		t.Errorf("error answer: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}

	errOut.Reset()
	code = run(t.Context(), []string{"publish", "--server", srv.URL, "--topic", "a", "{nope"}, nil, &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), "not valid JSON") {
		t.Errorf("invalid data: code %d, stderr %q", code, errOut.String())
	}
}

package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// tusJSONErrors answers tusd's refusals in Edge's error shape. tusd writes
// them as plain text, "ERR_CODE: message"; tus clients read only the
// status, and people and scripts get the same {"error":{"code","message"}}
// body as everywhere else. Status and tus headers are kept; successful
// answers (uploads, downloads) pass through untouched.
func tusJSONErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &tusErrorWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		tw.finish()
	})
}

// tusErrorWriter holds back the body of an answer of status 400 or more.
type tusErrorWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *tusErrorWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *tusErrorWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status >= 400 {
		return w.body.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (tusd sets read
// deadlines through it).
func (w *tusErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *tusErrorWriter) finish() {
	if w.status < 400 {
		return
	}
	text := strings.TrimSpace(w.body.String())
	code, msg, ok := strings.Cut(text, ": ")
	if !ok || !strings.HasPrefix(code, "ERR_") {
		code, msg = "ERR_"+strings.ToUpper(strings.ReplaceAll(codeFor(w.status), " ", "_")), text
	}
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	var body errorBody
	body.Error.Code = strings.ToLower(strings.TrimPrefix(code, "ERR_"))
	body.Error.Message = msg
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.ResponseWriter.WriteHeader(w.status)
	json.NewEncoder(w.ResponseWriter).Encode(body)
}

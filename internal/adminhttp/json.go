package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteJSON answers code with v, indented for people reading it with curl.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do about it
}

// Fail answers code with {"error": "..."}.
func Fail(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// NotFound is the catch-all handler of an API's mux.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Fail(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
}

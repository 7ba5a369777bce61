package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/meridian-gslb/meridian/internal/adminhttp"
)

// assets are the console's files: the pages, their style and scripts.
//
//go:embed assets
var assets embed.FS

// Page is which console a server shows at its root.
type Page int

const (
	// Node is the DNS node's console: the map, health, records, explain,
	// changes and live answers.
	Node Page = iota
	// Forwarder is the forwarder's console: pools, backends, listeners
	// and canaries.
	Forwarder
)

// file is the page's HTML file among the assets.
func (p Page) file() string {
	if p == Forwarder {
		return "forward.html"
	}
	return "node.html"
}

// securityPolicy keeps the pages to their own files: no inline script, no
// other origin, no framing. Together with inserting every API string as
// text, a name that holds markup can neither run nor load anything.
const securityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// Register serves page at GET / (the root alone: any other unknown path
// stays the API's 404) and the assets at GET /console/{file}, each through
// read, the API's read guard, so the console needs a token exactly when
// the API's reads do.
func Register(mux *http.ServeMux, page Page, read func(http.HandlerFunc) http.HandlerFunc) {
	mux.HandleFunc("GET /{$}", read(func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, page.file())
	}))
	mux.HandleFunc("GET /console/{file}", read(func(w http.ResponseWriter, r *http.Request) {
		serveAsset(w, r, r.PathValue("file"))
	}))
}

// serveAsset writes one embedded file with the console's headers, or the
// API's 404 for a name that is not one.
func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	data, err := fs.ReadFile(assets, path.Join("assets", path.Clean("/"+name)))
	if err != nil {
		adminhttp.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	h.Set("Content-Security-Policy", securityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // a new binary's console shows at the next load
	_, _ = w.Write(data)               // the client went away: nothing to do about it
}

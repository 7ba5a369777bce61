package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/internal/adminhttp"
)

// maxAssets is the most the embedded console may weigh (issue 21): it
// ships in every binary.
const maxAssets = 300 << 10

// TestAssetsSize sums the embedded files and fails above maxAssets.
func TestAssetsSize(t *testing.T) {
	total := 0
	err := fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, p)
		total += len(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > maxAssets {
		t.Errorf("the console's assets weigh %d bytes, over the %d allowed", total, maxAssets)
	}
	t.Logf("console assets: %d bytes", total)
}

// TestNoOutsideAssets: the pages name no other origin (no CDN, font or
// tile) and no inline script, which the security policy would block.
func TestNoOutsideAssets(t *testing.T) {
	_ = fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, _ error) error {
		if d.IsDir() {
			return nil
		}
		data, _ := fs.ReadFile(assets, p)
		// SVG's namespace is a name, not a fetch.
		text := strings.ReplaceAll(string(data), "http://www.w3.org/2000/svg", "")
		for _, bad := range []string{"http://", "https://", "//cdn", "@import", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if strings.HasSuffix(p, ".html") && strings.Contains(text, "<script>") {
			t.Errorf("%s has an inline script", p)
		}
		return nil
	})
}

func serve(t *testing.T, page Page, openReads bool) *httptest.Server {
	t.Helper()
	g := &adminhttp.Guard{Token: []byte("0123456789abcdef"), OpenReads: openReads}
	mux := http.NewServeMux()
	Register(mux, page, g.Read)
	mux.HandleFunc("/", adminhttp.NotFound)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// TestRegister serves each page at the root alone, the assets under
// /console/, and the API's 404 for anything else.
func TestRegister(t *testing.T) {
	tests := []struct {
		page       Page
		path       string
		code       int
		typ, holds string
	}{
		{Node, "/", 200, "text/html", `src="/console/node.js"`},
		{Forwarder, "/", 200, "text/html", `src="/console/forward.js"`},
		{Node, "/console/common.js", 200, "text/javascript", "sessionStorage"},
		{Node, "/console/console.css", 200, "text/css", "focus-visible"},
		{Node, "/console/", 404, "application/json", "no such endpoint"},
		{Node, "/console/nope.js", 404, "application/json", "no such endpoint"},
		{Node, "/console/..%2fconsole.go", 404, "application/json", "no such endpoint"},
		{Node, "/index.html", 404, "application/json", "no such endpoint"},
	}
	for _, tt := range tests {
		srv := serve(t, tt.page, true)
		code, h, body := get(t, srv.URL+tt.path)
		if code != tt.code || !strings.HasPrefix(h.Get("Content-Type"), tt.typ) || !strings.Contains(body, tt.holds) {
			t.Errorf("%s: %d %s %.80q, want %d %s with %q", tt.path, code, h.Get("Content-Type"), body, tt.code, tt.typ, tt.holds)
		}
		if code == 200 && !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s: no security policy: %v", tt.path, h)
		}
	}
}

// TestClosedReads: with admin.open_reads off the console needs the token
// as the API's reads do.
func TestClosedReads(t *testing.T) {
	srv := serve(t, Node, false)
	for _, p := range []string{"/", "/console/node.js"} {
		if code, _, body := get(t, srv.URL+p); code != http.StatusUnauthorized {
			t.Errorf("%s with reads closed: %d %s, want 401", p, code, body)
		}
	}
}

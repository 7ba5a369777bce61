package h1

import (
	"bufio"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// FuzzH1Request holds the fast path's request parser to net/http's: a
// head the fast path takes, net/http reads too, to the same method,
// target, Host, headers and body length. The fast path may refuse more
// (it hands those to net/http); it must never take what net/http would
// refuse or read differently.
//
//	go test -run '^$' -fuzz FuzzH1Request -fuzztime 30s ./gslb/forward/h1
func FuzzH1Request(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"GET /a%20b?x=1 HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: u\r\nCookie: a=1\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
		"DELETE /d HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nKeep-Alive: 5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX:  spaced value \t\r\n\r\n",
		"OPTIONS /o HTTP/1.1\r\nhost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"PATCH /p HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /p HTTP/1.1\nHost: h\ntransfer-encoding: chunked\r\nX: y\ncontent-length: 0\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, head string) {
		i := strings.Index(head, "\r\n\r\n")
		if i < 0 {
			return
		}
		head = head[:i+4]
		checkAmbiguousLength(t, head)
		var q Request
		if !q.Parse(head) {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("the fast path took %q, net/http refuses it: %v", head, err)
		}
		if r.Method != q.Method || r.RequestURI != q.Target || r.Host != q.Host || r.URL.Path != q.Path {
			t.Fatalf("%q: fast path %s %s host %q path %q; net/http %s %s host %q path %q",
				head, q.Method, q.Target, q.Host, q.Path, r.Method, r.RequestURI, r.Host, r.URL.Path)
		}
		if r.ContentLength != int64(max(q.Length, 0)) || len(r.TransferEncoding) > 0 {
			t.Fatalf("%q: fast path body length %d; net/http %d, %q", head, q.Length, r.ContentLength, r.TransferEncoding)
		}
		for _, h := range q.Headers {
			if !slices.Contains(r.Header.Values(h.Name), h.Value) {
				t.Fatalf("%q: header %s: fast path %q, net/http %q", head, h.Name, h.Value, r.Header.Values(h.Name))
			}
		}
	})
}

// checkAmbiguousLength holds AmbiguousLength to net/http's reading of
// the head: whenever net/http reads the head, both say alike whether it
// has a Content-Length and a Transfer-Encoding.
func checkAmbiguousLength(t *testing.T, head string) {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return
	}
	_, cl := h["Content-Length"]
	_, te := h["Transfer-Encoding"]
	if got := AmbiguousLength(head); got != (cl && te) {
		t.Fatalf("%q: AmbiguousLength %v; net/http reads Content-Length %v, Transfer-Encoding %v", head, got, cl, te)
	}
}

// FuzzH1Response feeds the fast path's answer parser anything: it must
// not panic, and an answer it reads has a status and a framing.
func FuzzH1Response(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n",
	} {
		f.Add(seed, "GET")
	}
	f.Fuzz(func(t *testing.T, head, method string) {
		i := strings.Index(head, "\r\n\r\n")
		if i < 0 {
			return
		}
		var r Response
		if err := r.Parse([]byte(head[:i+4]), method); err != nil {
			return
		}
		if r.Status < 100 || r.Status > 999 || r.Length < LengthUntilClose || (r.Length == LengthUntilClose && !r.Close) {
			t.Fatalf("%q: status %d, length %d, close %v", head, r.Status, r.Length, r.Close)
		}
	})
}

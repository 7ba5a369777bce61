package forward

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closingBackend accepts connections, reads a request head and closes
// without answering: a backend that crashes on the request (a query of
// death). It counts the connections it accepted.
func closingBackend(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	accepted = new(atomic.Int64)
	b := startTCPBackend(t, "closer", "", func(c net.Conn) {
		accepted.Add(1)
		_, _ = http.ReadRequest(bufio.NewReader(c))
	})
	return b.addr, accepted
}

// A backend that closes without answering gets at most retries + 1
// attempts of one request, however its connections fail: a request of
// death is not amplified. Both paths.
func TestClosingBackendAttempts(t *testing.T) {
	t.Parallel()
	for _, fast := range []bool{true, false} {
		t.Run(map[bool]string{true: "fast", false: "net/http"}[fast], func(t *testing.T) {
			t.Parallel()
			addr, accepted := closingBackend(t)
			extra := ""
			if !fast {
				extra = "fast_path = false"
			}
			h := startForwarder(t, uncheckedPool("web", "[pool.outlier]\nconsecutive_failures = 0\n[pool.http]\nretries = 1", addr)+listenerTOML("web", "http", "web", extra))
			r := send(t, httpClient(), "GET", h.url("web")+"/", "", "", nil)
			if r.code != http.StatusBadGateway {
				t.Errorf("status %d, want 502", r.code)
			}
			t.Logf("accepted %d", accepted.Load())
			if n := accepted.Load(); n > 2 {
				t.Errorf("the backend was hit %d times for one GET with retries = 1, want at most 2", n)
			}
		})
	}
}

// pathsBackend is an HTTP backend that answers 200 and records the paths
// it was asked for.
type pathsBackend struct {
	addr  string
	mu    sync.Mutex
	paths []string
}

func startPathsBackend(t *testing.T) *pathsBackend {
	t.Helper()
	b := &pathsBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.paths = append(b.paths, r.URL.Path)
		b.mu.Unlock()
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

func (b *pathsBackend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.paths)
}

// answers sends raw bytes on a new connection and reads every answer
// until the proxy closes it; closed says whether it did within waitFor.
func answers(t *testing.T, addr, raw string) (statuses []int, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses, !isTimeout(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

// A request with both Content-Length and Transfer-Encoding (RFC 9112,
// section 6.3) never leaves its connection open for a request behind it:
// the fast path refuses it with 400, net/http reads it by its
// Transfer-Encoding and closes after the answer. The request pipelined
// after it reaches no backend.
func TestAmbiguousLengthClosesConnection(t *testing.T) {
	t.Parallel()
	const smuggle = "POST /first HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n"
	tests := []struct {
		name  string
		extra string
		raw   string
		want  []int
	}{
		{"fast path", "", smuggle, []int{400}},
		{"fast path, after a request it served", "", "GET /before HTTP/1.1\r\nHost: app.test\r\n\r\n" + smuggle, []int{200, 400}},
		{"net/http", "fast_path = false", smuggle, []int{200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startPathsBackend(t)
			h := startForwarder(t, uncheckedPool("web", "", b.addr)+listenerTOML("web", "http", "web", tt.extra))
			got, closed := answers(t, h.addr("web"), tt.raw)
			if !slices.Equal(got, tt.want) || !closed {
				t.Errorf("answers %v, connection closed %v; want %v and closed", got, closed, tt.want)
			}
			if slices.Contains(b.seen(), "/smuggled") {
				t.Errorf("the request pipelined after the ambiguous one was served: backend saw %v", b.seen())
			}
		})
	}
}

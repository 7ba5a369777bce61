package forward

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// deathBackend is a keep-alive HTTP/1.1 backend that answers /slow
// after a moment and any other path at once, except /death: it reads
// that request and closes the connection without answering, as a backend
// that crashes on a request would. It counts the /death requests it read.
func deathBackend(t *testing.T) (addr string, deaths *atomic.Int64) {
	t.Helper()
	deaths = new(atomic.Int64)
	b := startTCPBackend(t, "death", "", func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			switch r.URL.Path {
			case "/death":
				deaths.Add(1)
				return
			case "/slow":
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"); err != nil {
				return
			}
		}
	})
	return b.addr, deaths
}

// A request its backend dies of (it reads it and closes without an
// answer) gets at most retries + 1 attempts, whatever connections the
// pool keeps to it: each kept connection that fails so is an attempt
// like any other, so a request of death is not multiplied. Both paths.
func TestRequestOfDeathAttempts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, extra string
		retries     int
	}{
		{"fast path", "", 1},
		{"fast path, no retries", "", 0},
		{"net/http", "fast_path = false", 1},
		{"net/http, no retries", "fast_path = false", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, deaths := deathBackend(t)
			src := uncheckedPool("web", fmt.Sprintf("[pool.outlier]\nconsecutive_failures = 0\n[pool.http]\nretries = %d", tt.retries), addr) +
				listenerTOML("web", "http", "web", tt.extra)
			h := startForwarder(t, src)
			var wg sync.WaitGroup
			for range 6 { // several kept connections to the backend
				wg.Go(func() { send(t, httpClient(), "GET", h.url("web")+"/slow", "", "", nil) })
			}
			wg.Wait()
			r := send(t, httpClient(), "GET", h.url("web")+"/death", "", "", nil)
			if r.code != http.StatusBadGateway {
				t.Errorf("status %d, want 502", r.code)
			}
			if n := deaths.Load(); n > int64(tt.retries+1) {
				t.Errorf("the backend read the request %d times with retries = %d, want at most %d", n, tt.retries, tt.retries+1)
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

// bodyBackend reads request bodies to their end and counts the handlers
// in progress, and the bodies that ended early.
type bodyBackend struct {
	addr         string
	active, cut  atomic.Int64
	requestsSeen atomic.Int64
}

func startBodyBackend(t *testing.T) *bodyBackend {
	t.Helper()
	b := &bodyBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requestsSeen.Add(1)
		b.active.Add(1)
		defer b.active.Add(-1)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			b.cut.Add(1)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

// trickle sends a POST head announcing length bytes, then one byte of its
// body every gap until the connection fails or stop closes; it returns the
// connection, whose answer the caller reads.
func trickle(t *testing.T, addr string, length int, gap time.Duration) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitFor))
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\nx", length)
	go func() {
		for range 1000 { // bounded: 1000 gaps
			time.Sleep(gap)
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	return c
}

// A client that trickles its body (a byte every 100 ms: never 1 s without
// one, but far below min_body_rate) or stops sending it is answered 408
// and its connection closed once body_timeout and min_body_rate allow, on
// the fast path (a body within its buffer) and on net/http (a large body,
// or fast_path = false); a body within retry_buffer never reaches a
// backend, and the backend a larger, streamed body was going to is let
// go.
func TestSlowBodyTimesOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, extra string
		length      int
		gap         time.Duration
		streamed    bool // the body was on its way to the backend
	}{
		{"fast path, trickled", "", 4000, 100 * time.Millisecond, false},
		{"fast path, stalled", "", 4000, time.Hour, false},
		{"net/http, large body trickled", "", 1000000, 100 * time.Millisecond, true},
		{"net/http, stalled", "fast_path = false", 1000000, time.Hour, true},
		{"net/http, small body trickled", "fast_path = false", 4000, 100 * time.Millisecond, false}, // read whole first
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startBodyBackend(t)
			extra := "body_timeout = \"1s\"\nmin_body_rate = 1000\n" + tt.extra
			h := startForwarder(t, uncheckedPool("web", "", b.addr)+listenerTOML("web", "http", "web", extra))
			start := time.Now()
			c := trickle(t, h.addr("web"), tt.length, tt.gap)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %v: %v", waitFor, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
				t.Errorf("answer %d (close %v), want 408 and Connection: close", resp.StatusCode, resp.Close)
			}
			if _, err := br.ReadByte(); err == nil || isTimeout(err) {
				t.Errorf("the connection is still open after the 408: %v", err)
			}
			t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
			if tt.streamed {
				testkit.Eventually(t, "the backend's handler ends", func() bool { return b.active.Load() == 0 && b.cut.Load() == b.requestsSeen.Load() })
			} else if n := b.requestsSeen.Load(); n != 0 {
				t.Errorf("the backend got %d requests, want none: the body was never whole", n)
			}
		})
	}
}

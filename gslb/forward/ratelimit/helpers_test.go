package ratelimit

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// epoch is a multiple of every window the tests use, so windows start at
// the tests' time zero.
var epoch = time.Unix(1_699_999_200, 0)

// fakeClock is the injected clock: it moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustNew(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// request builds a request from addr with the given header pairs.
func request(addr string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.test/api", nil)
	r.RemoteAddr = addr
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

// allowN makes n requests and returns how many were allowed.
func allowN(l *Limiter, r *http.Request, n int) int {
	allowed := 0
	for range n {
		if l.Allow(r).Allowed {
			allowed++
		}
	}
	return allowed
}

// server runs l's middleware in front of a handler that answers 200, on a
// loopback listener.
func server(t *testing.T, l *Limiter) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	t.Cleanup(srv.Close)
	return srv
}

// get sends a GET with the given header pairs to srv and returns the
// response with its body read and closed.
func get(t *testing.T, srv *httptest.Server, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func textLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

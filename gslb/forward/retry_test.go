package forward

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// Retries: an idempotent request answered 503 is sent again to another
// backend with its body; a POST is not, unless the pool says so; a
// connection refused is retried whatever the method, since nothing
// reached a backend; a body past retry_buffer is streamed and not retried
// once sent.
func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		pool       string
		method     string
		body       string
		badDead    bool // the first backend refuses connections rather than answering 503
		wantCode   int
		wantBad    int64 // tries the failing backend got: requests, or refused connections when dead
		wantGood   int64
		wantReason string // the retries metric that counts it
	}{
		{"GET retried", "", "GET", "", false, 200, 1, 1, "status"},
		{"PUT retried with its body", "", "PUT", strings.Repeat("x", 1000), false, 200, 1, 1, "status"},
		{"POST not retried", "", "POST", "order=1", false, 503, 1, 0, ""},
		{"POST retried when configured", "[pool.http]\nretry_non_idempotent = true", "POST", "order=1", false, 200, 1, 1, "status"},
		{"POST retried after a refused connection", "", "POST", "order=1", true, 200, 1, 1, "connect"},
		{"no retries", "[pool.http]\nretries = 0", "GET", "", false, 503, 1, 0, ""},
		{"body past retry_buffer not retried", "[pool.http]\nretry_buffer = 100", "PUT", strings.Repeat("y", 101), false, 503, 1, 0, ""},
		{"body at retry_buffer retried", "[pool.http]\nretry_buffer = 100", "PUT", strings.Repeat("y", 100), false, 200, 1, 1, "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad, good := startHTTPBackend(t, "bad"), startHTTPBackend(t, "good")
			bad.status.Store(http.StatusServiceUnavailable)
			badAddr := bad.addr
			if tt.badDead {
				badAddr = freeAddr(t)
			}
			// Round robin from a fresh pool: the first try goes to the
			// first backend.
			src := pool("web", `balance = "round_robin"
[pool.outlier]
consecutive_failures = 0
[pool.check]
type = "none"
`+tt.pool, badAddr, good.addr) + listenerTOML("web", "http", "web", "")
			h := startForwarder(t, src)
			r := send(t, httpClient(), tt.method, h.url("web")+"/op", "", tt.body, nil)
			if r.code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tt.wantCode, r.body)
			}
			// A dead backend gets no request (bad, not in the pool then,
			// gets none either): its tries are the connections it refused.
			badTries := bad.hits.Load()
			if tt.badDead {
				badTries = int64(h.metric(`meridian_forward_backend_connect_errors_total{backend="` + badAddr + `",pool="web"}`))
			}
			if badTries != tt.wantBad || good.hits.Load() != tt.wantGood {
				t.Errorf("tries: failing backend %d, good %d; want %d, %d", badTries, good.hits.Load(), tt.wantBad, tt.wantGood)
			}
			if tt.wantCode == 200 && r.seen.Body != tt.body {
				t.Errorf("the retried body arrived as %d bytes, want %d", len(r.seen.Body), len(tt.body))
			}
			if tt.wantReason != "" {
				if got := h.metric(`meridian_forward_pool_http_retries_total{pool="web",reason="` + tt.wantReason + `"}`); got != 1 {
					t.Errorf("retries{%s} = %v, want 1", tt.wantReason, got)
				}
			}
		})
	}
}

// The retry budget: with every backend failing, retries stay within 20%
// of the requests (no floor here), so they cannot multiply the load of an
// outage; the refused ones are counted.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	a, b := startHTTPBackend(t, "a"), startHTTPBackend(t, "b")
	a.status.Store(http.StatusServiceUnavailable)
	b.status.Store(http.StatusServiceUnavailable)
	h := startForwarder(t, httpPool("web", `[pool.outlier]
consecutive_failures = 0
[pool.http]
retries = 3
retry_budget = 0.2
retry_budget_min = 0`, a, b)+listenerTOML("web", "http", "web", ""))
	c := httpClient()
	const requests = 100
	for i := range requests {
		if r := send(t, c, "GET", h.url("web")+"/", "", "", nil); r.code != http.StatusServiceUnavailable {
			t.Fatalf("request %d: %d", i, r.code)
		}
	}
	tries := a.hits.Load() + b.hits.Load()
	if tries != requests*1.2 {
		t.Errorf("%d requests made %d tries, want %d (a 20%% budget)", requests, tries, requests*12/10)
	}
	if got := h.metric(`meridian_forward_pool_http_retries_total{pool="web",reason="status"}`); got != 20 {
		t.Errorf("retries = %v, want 20", got)
	}
	// Every request ended on a retry the budget refused: 80 at their
	// first, the 20 that had one at their second.
	if got := h.metric(`meridian_forward_pool_http_retry_budget_exhausted_total{pool="web"}`); got != requests {
		t.Errorf("budget exhausted = %v, want %d", got, requests)
	}
}

// A backend that stops answering in time: the try times out (504), and
// with retry_timeout the request goes to another backend.
func TestTryTimeout(t *testing.T) {
	t.Parallel()
	slow, fast := startHTTPBackend(t, "slow"), startHTTPBackend(t, "fast")
	slow.delay.Store(int64(5 * time.Second))
	for _, retry := range []bool{false, true} {
		extra := "[pool.http]\ntimeout = \"100ms\"\nretries = 0"
		want := http.StatusGatewayTimeout
		if retry {
			extra = "[pool.http]\ntimeout = \"100ms\"\nretry_timeout = true"
			want = http.StatusOK
		}
		h := startForwarder(t, uncheckedPool("web", "balance = \"round_robin\"\n"+extra, slow.addr, fast.addr)+
			listenerTOML("web", "http", "web", ""))
		start := time.Now()
		r := send(t, httpClient(), "GET", h.url("web")+"/", "", "", nil)
		if r.code != want {
			t.Errorf("retry_timeout %v: %d, want %d", retry, r.code, want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("retry_timeout %v: took %v", retry, d)
		}
	}
}

// Passive health: a backend answering 5xx is ejected by outlier detection
// after consecutive_failures, and requests stop going to it.
func TestHTTPOutlierEjection(t *testing.T) {
	t.Parallel()
	bad, good := startHTTPBackend(t, "bad"), startHTTPBackend(t, "good")
	bad.status.Store(http.StatusInternalServerError)
	h := startForwarder(t, httpPool("web", `balance = "round_robin"
[pool.outlier]
consecutive_failures = 3
base_ejection_time = "1m"
max_ejection_percent = 50
[pool.http]
retries = 0`, bad, good)+listenerTOML("web", "http", "web", ""))
	c := httpClient()
	for range 6 {
		send(t, c, "GET", h.url("web")+"/", "", "", nil)
	}
	if got := bad.hits.Load(); got != 3 {
		t.Errorf("the failing backend got %d requests, want 3 (then ejected)", got)
	}
	for i := range 10 {
		if r := send(t, c, "GET", h.url("web")+"/", "", "", nil); r.seen.Backend != "good" {
			t.Fatalf("request %d after the ejection went to %q", i, r.seen.Backend)
		}
	}
	if v := h.backend("web", bad.addr); v.State != "ejected" || v.HTTPErrors != 3 {
		t.Errorf("admin view of the failing backend: state %s, http errors %d", v.State, v.HTTPErrors)
	}
}

// The circuit breaker: failures open it and take the backend out of
// rotation; after open_time one probe goes through, and a good answer
// closes it again.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	flaky, steady := startHTTPBackend(t, "flaky"), startHTTPBackend(t, "steady")
	flaky.status.Store(http.StatusBadGateway)
	h := startForwarder(t, httpPool("web", `balance = "round_robin"
[pool.outlier]
consecutive_failures = 0
[pool.breaker]
consecutive_failures = 2
open_time = "300ms"
[pool.http]
retries = 0`, flaky, steady)+listenerTOML("web", "http", "web", ""))
	c := httpClient()
	series := `meridian_forward_backend_breaker_state{backend="` + flaky.addr + `",pool="web"}`
	for range 4 {
		send(t, c, "GET", h.url("web")+"/", "", "", nil)
	}
	if got := flaky.hits.Load(); got != 2 {
		t.Errorf("flaky got %d requests, want 2 before the breaker opened", got)
	}
	if got := h.metric(series); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	if v := h.backend("web", flaky.addr); v.State != "breaker-open" || v.Available {
		t.Errorf("admin view: state %q, available %v", v.State, v.Available)
	}
	for i := range 5 {
		if r := send(t, c, "GET", h.url("web")+"/", "", "", nil); r.seen.Backend != "steady" {
			t.Fatalf("request %d while open went to %q", i, r.seen.Backend)
		}
	}
	// Healed: once open_time passes, a probe reaches it and closes the
	// breaker.
	flaky.status.Store(http.StatusOK)
	testkit.Eventually(t, "the breaker closes after a probe", func() bool {
		send(t, c, "GET", h.url("web")+"/", "", "", nil)
		return h.metric(series) == 0
	})
	if got := h.metric(`meridian_forward_backend_breaker_opens_total{backend="` + flaky.addr + `",pool="web"}`); got != 1 {
		t.Errorf("breaker opens = %v, want 1", got)
	}
	if !strings.Contains(h.log.String(), "circuit breaker open") || !strings.Contains(h.log.String(), "circuit breaker closed") {
		t.Error("the breaker's changes are not logged")
	}
}

// HTTPS to the backends: verified against the configured CA and name; a
// backend the CA does not vouch for gets no request.
func TestHTTPSBackends(t *testing.T) {
	t.Parallel()
	b, ca := startTLSBackend(t, "tls")
	other := testkit.NewCA(t)
	otherPEM := other.CertPEM()
	h := startForwarderWith(t, func(dir string) {
		os.WriteFile(filepath.Join(dir, "backend-ca.pem"), ca, 0o600)
		os.WriteFile(filepath.Join(dir, "other-ca.pem"), otherPEM, 0o600)
	}, httpPool("verified", `[pool.http]
scheme = "https"
ca_file = "backend-ca.pem"
server_name = "example.com"`, b)+httpPool("unverified", `[pool.http]
scheme = "https"
ca_file = "other-ca.pem"
server_name = "example.com"
retries = 0`, b)+
		listenerTOML("ok", "http", "verified", "")+listenerTOML("bad", "http", "unverified", ""))
	c := httpClient()
	if r := send(t, c, "GET", h.url("ok")+"/", "", "", nil); r.code != http.StatusOK || r.seen.Backend != "tls" {
		t.Errorf("through a verified backend: %d %q", r.code, r.body)
	}
	hits := b.hits.Load()
	if r := send(t, c, "GET", h.url("bad")+"/", "", "", nil); r.code != http.StatusBadGateway {
		t.Errorf("through a backend the CA does not vouch for: %d, want 502", r.code)
	}
	if b.hits.Load() != hits {
		t.Error("a request reached a backend that failed verification")
	}
}

// The circuit breaker on the L4 path: refused connections open it, the
// backend leaves rotation without any active check, and once open_time
// has passed a probe connection to the restarted backend closes it.
func TestCircuitBreakerTCP(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	b := startTCPBackend(t, "b", "", named("b"))
	h := startForwarder(t, pool("web", `balance = "round_robin"
connect_attempts = 2
[pool.check]
type = "none"
[pool.outlier]
consecutive_failures = 0
[pool.breaker]
consecutive_failures = 2
open_time = "300ms"`, a.addr, b.addr)+listenerTOML("web", "tcp", "web", ""))
	b.stop()
	for i := range 6 {
		if name := connectName(t, h.addr("web")); name != "a" {
			t.Fatalf("connection %d went to %q", i, name)
		}
	}
	series := `meridian_forward_backend_breaker_state{backend="` + b.addr + `",pool="web"}`
	if got := h.metric(series); got != 2 {
		t.Errorf("breaker state = %v, want 2 (open)", got)
	}
	if got := h.metric(`meridian_forward_backend_connect_errors_total{backend="` + b.addr + `",pool="web"}`); got != 2 {
		t.Errorf("connect errors = %v, want 2: the open breaker spares b the rest", got)
	}
	b.restart()
	testkit.Eventually(t, "a probe closes the breaker", func() bool {
		connectName(t, h.addr("web"))
		return h.metric(series) == 0
	})
}

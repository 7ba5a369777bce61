package forward

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testJWTSecret = "jwt-test-secret-0123456789abcdef-0123456789"

func signedToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Rate limits through the proxy, one route per key kind: each key gets
// exactly its quota, the next request is refused 429 with Retry-After and
// the RateLimit headers, other keys and unlimited routes are untouched,
// and every refusal is counted.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarderWith(t, func(dir string) {
		os.WriteFile(filepath.Join(dir, "jwt.secret"), []byte(testJWTSecret), 0o600)
	}, `[[rate_limit]]
name = "per-ip"
rate = 0.01
burst = 3

[[rate_limit]]
name = "per-key"
algorithm = "sliding_window"
limit = 2
window = "1h"
key = "api_key"

[[rate_limit]]
name = "per-tenant"
rate = 0.01
burst = 2
key = "header"
header = "X-Tenant"
fallback = "ip"

[[rate_limit]]
name = "per-user"
rate = 0.01
burst = 2
key = "jwt_claim"
[rate_limit.jwt]
algorithm = "HS256"
secret_file = "jwt.secret"

`+httpPool("b", "", b)+listenerTOML("web", "http", "b", `trusted_proxies = ["127.0.0.1"]
[[listener.route]]
name = "ip"
path_prefix = "/ip"
pool = "b"
rate_limit = "per-ip"
[[listener.route]]
name = "key"
path_prefix = "/key"
pool = "b"
rate_limit = "per-key"
[[listener.route]]
name = "tenant"
path_prefix = "/tenant"
pool = "b"
rate_limit = "per-tenant"
[[listener.route]]
name = "user"
path_prefix = "/user"
pool = "b"
rate_limit = "per-user"`))
	c := httpClient()
	alice, bob := signedToken(t, "alice"), signedToken(t, "bob")
	tests := []struct {
		name, path string
		quota      int
		key, other map[string]string // two clients with separate quotas
	}{
		{"client ip through trusted proxies", "/ip", 3,
			map[string]string{"X-Forwarded-For": "198.51.100.1"}, map[string]string{"X-Forwarded-For": "198.51.100.2"}},
		{"api key, sliding window", "/key", 2, map[string]string{"X-API-Key": "k1"}, map[string]string{"X-API-Key": "k2"}},
		{"header", "/tenant", 2, map[string]string{"X-Tenant": "acme"}, map[string]string{"X-Tenant": "globex"}},
		{"jwt claim", "/user", 2, map[string]string{"Authorization": "Bearer " + alice}, map[string]string{"Authorization": "Bearer " + bob}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.quota {
				if r := send(t, c, "GET", h.url("web")+tt.path, "", "", tt.key); r.code != http.StatusOK {
					t.Fatalf("request %d of a quota of %d: %d %s", i+1, tt.quota, r.code, r.body)
				}
			}
			r := send(t, c, "GET", h.url("web")+tt.path, "", "", tt.key)
			if r.code != http.StatusTooManyRequests {
				t.Fatalf("request past the quota: %d, want 429", r.code)
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
			}
			if !strings.Contains(r.header.Get("RateLimit"), ";r=0;") || r.header.Get("RateLimit-Policy") == "" {
				t.Errorf("RateLimit = %q, RateLimit-Policy = %q", r.header.Get("RateLimit"), r.header.Get("RateLimit-Policy"))
			}
			if r := send(t, c, "GET", h.url("web")+tt.path, "", "", tt.other); r.code != http.StatusOK {
				t.Errorf("another key was refused: %d", r.code)
			}
		})
	}
	// A route without a limit is not limited.
	for range 10 {
		if r := send(t, c, "GET", h.url("web")+"/free", "", "", nil); r.code != http.StatusOK {
			t.Fatalf("unlimited route: %d", r.code)
		}
	}
	// Missing or bad keys.
	if r := send(t, c, "GET", h.url("web")+"/key", "", "", nil); r.code != http.StatusUnauthorized {
		t.Errorf("no API key: %d, want 401", r.code)
	}
	if r := send(t, c, "GET", h.url("web")+"/user", "", "", map[string]string{"Authorization": "Bearer " + alice[:len(alice)-2] + "xx"}); r.code != http.StatusUnauthorized {
		t.Errorf("a token whose signature fails: %d, want 401", r.code)
	}
	if r := send(t, c, "GET", h.url("web")+"/tenant", "", "", nil); r.code != http.StatusOK {
		t.Errorf("no tenant header, limited by address instead: %d", r.code)
	}
	for route, want := range map[string]float64{"ip": 1, "key": 2, "tenant": 1, "user": 2} {
		if got := h.metric(`meridian_forward_http_ratelimited_total{listener="web",route="` + route + `"}`); got != want {
			t.Errorf("rate limited on route %s = %v, want %v", route, got, want)
		}
	}
	if got := h.metric(`meridian_forward_ratelimit_requests_total{policy="per-user",result="invalid_token"}`); got != 1 {
		t.Errorf("invalid tokens = %v, want 1", got)
	}
	if got := h.metric(`meridian_forward_ratelimit_requests_total{policy="per-key",result="limited"}`); got != 1 {
		t.Errorf("per-key limited = %v, want 1", got)
	}
	// A reload that keeps a policy keeps its counts: the key stays
	// limited.
	h.reload(strings.TrimPrefix(readFile(t, h.path), "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\n\n"))
	if r := send(t, c, "GET", h.url("web")+"/key", "", "", map[string]string{"X-API-Key": "k1"}); r.code != http.StatusTooManyRequests {
		t.Errorf("after a reload the limited key got %d, want 429", r.code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

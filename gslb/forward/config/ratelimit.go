package config

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ForwardRateLimit is a named rate limit policy, applied by the routes
// that name it (all of them share its counts).
type ForwardRateLimit struct {
	Name      string   `toml:"name"`
	Algorithm string   `toml:"algorithm"` // token_bucket or sliding_window
	Rate      float64  `toml:"rate"`      // token bucket: requests a second
	Burst     int      `toml:"burst"`     // token bucket: default rate, rounded up
	Limit     int      `toml:"limit"`     // sliding window: requests a window
	Window    Duration `toml:"window"`    // sliding window
	// Key is what is limited: ip (the client, through trusted proxies),
	// api_key (header X-API-Key unless header says otherwise), header (the
	// value of header), or jwt_claim (a verified token's claim).
	Key        string     `toml:"key"`
	Header     string     `toml:"header"`
	Fallback   string     `toml:"fallback"` // a request without its key: reject (default) or ip
	IPv6Prefix int        `toml:"ipv6_prefix"`
	MaxKeys    int        `toml:"max_keys"`
	KeyTTL     Duration   `toml:"key_ttl"`
	Headers    bool       `toml:"headers"`   // RateLimit headers on allowed answers too
	LogEvery   int        `toml:"log_every"` // log one rejection in this many
	JWT        ForwardJWT `toml:"jwt"`
}

// ForwardJWT verifies the tokens of a jwt_claim rate limit.
type ForwardJWT struct {
	Algorithm     string   `toml:"algorithm"`       // HS256, RS256 or ES256
	SecretFile    string   `toml:"secret_file"`     // HS256: the shared secret, at least 32 bytes
	PublicKeyFile string   `toml:"public_key_file"` // RS256, ES256: PEM public key or certificate
	Claim         string   `toml:"claim"`           // default sub
	Header        string   `toml:"header"`          // default Authorization (Bearer)
	Issuer        string   `toml:"issuer"`
	Audience      string   `toml:"audience"`
	RequireExpiry bool     `toml:"require_expiry"`
	Leeway        Duration `toml:"leeway"`
}

// ForwardCanary sends Percent of a route's requests to Pool rather than the
// route's pool. The admin API changes the share at runtime; Guard, when
// set, rolls it back by itself when the canary serves worse than the
// route's pool.
type ForwardCanary struct {
	Pool    string              `toml:"pool"`
	Percent int                 `toml:"percent"`
	Guard   *ForwardCanaryGuard `toml:"guard"`
}

// ForwardCanaryGuard compares the canary's pool with the route's over a
// sliding window and sets the canary's share to 0 when its 5xx rate or
// p99 latency is worse by more than the margins. Zero values take the
// canary package's defaults.
type ForwardCanaryGuard struct {
	Window            Duration `toml:"window"`               // default 1m
	Interval          Duration `toml:"interval"`             // between judgements; default window/10
	MaxErrorRateDelta *float64 `toml:"max_error_rate_delta"` // 0.01: one percentage point more 5xx; negative: not judged
	MaxLatencyRatio   *float64 `toml:"max_latency_ratio"`    // 1.5: p99 up to 1.5 times the baseline's; negative: not judged
	MinRequests       int      `toml:"min_requests"`         // in the window, for each pool, before judging; default 100
	DryRun            bool     `toml:"dry_run"`              // log and count, but leave the share alone
}

var (
	rateAlgorithms = []string{"token_bucket", "sliding_window"}
	rateKeys       = []string{"ip", "api_key", "header", "jwt_claim"}
	rateFallbacks  = []string{"reject", "ip"}
	jwtAlgorithms  = []string{"HS256", "RS256", "ES256"}
)

func (rl *ForwardRateLimit) setDefaults() {
	rl.Algorithm = strings.ToLower(cmp.Or(rl.Algorithm, "token_bucket"))
	rl.Key = strings.ToLower(cmp.Or(rl.Key, "ip"))
	rl.Fallback = strings.ToLower(cmp.Or(rl.Fallback, "reject"))
	if rl.Header != "" {
		rl.Header = http.CanonicalHeaderKey(rl.Header)
	}
	rl.JWT.Algorithm = strings.ToUpper(rl.JWT.Algorithm)
}

// validate checks what can be checked without the key files; the rest is
// the rate limiter's to say when the forwarder loads them. It records the
// policy's name for the routes that apply it.
func (rl *ForwardRateLimit) validate(v *validator, key string) {
	switch {
	case rl.Name == "":
		v.fail(key+".name", "missing: routes name the policy they apply")
	case !policyName(rl.Name):
		v.fail(key+".name", "%q: up to 64 letters, digits, - _ and . only (it is sent in RateLimit headers)", rl.Name)
	case v.rateLimits[rl.Name]:
		v.fail(key+".name", "rate limit %q is defined twice", rl.Name)
	}
	v.rateLimits[rl.Name] = true
	rl.validateAlgorithm(v, key)
	if !slices.Contains(rateKeys, rl.Key) {
		v.fail(key+".key", "must be ip, api_key, header or jwt_claim, got %q", rl.Key)
	}
	if rl.Key == "header" && rl.Header == "" {
		v.fail(key+".header", "missing: the header whose value is the key")
	}
	if rl.Header != "" && !validHeaderName(rl.Header) {
		v.fail(key+".header", "%q is not a header name", rl.Header)
	}
	if !slices.Contains(rateFallbacks, rl.Fallback) {
		v.fail(key+".fallback", "must be reject or ip, got %q", rl.Fallback)
	}
	if rl.IPv6Prefix < 0 || rl.IPv6Prefix > 128 {
		v.fail(key+".ipv6_prefix", "must be 0 to 128, got %d", rl.IPv6Prefix)
	}
	if rl.MaxKeys < 0 || rl.LogEvery < 0 || rl.KeyTTL.Duration < 0 {
		v.fail(key, "max_keys, log_every and key_ttl must not be negative")
	}
	if rl.Key != "jwt_claim" {
		if rl.JWT != (ForwardJWT{}) {
			v.fail(key+".jwt", "is for key = \"jwt_claim\"")
		}
		return
	}
	rl.JWT.validate(v, key+".jwt")
}

func (rl *ForwardRateLimit) validateAlgorithm(v *validator, key string) {
	if !slices.Contains(rateAlgorithms, rl.Algorithm) {
		v.fail(key+".algorithm", "must be token_bucket or sliding_window, got %q", rl.Algorithm)
	}
	switch rl.Algorithm {
	case "token_bucket":
		if rl.Rate <= 0 {
			v.fail(key+".rate", "must be positive (requests a second), got %g", rl.Rate)
		}
		if rl.Burst < 0 {
			v.fail(key+".burst", "must not be negative, got %d", rl.Burst)
		}
	case "sliding_window":
		if rl.Limit < 1 {
			v.fail(key+".limit", "must be at least 1 (requests a window), got %d", rl.Limit)
		}
		if rl.Window.Duration < time.Millisecond {
			v.fail(key+".window", "must be at least 1ms, got %s", rl.Window)
		}
	}
}

func (j *ForwardJWT) validate(v *validator, key string) {
	if !slices.Contains(jwtAlgorithms, j.Algorithm) {
		v.fail(key+".algorithm", "must be HS256, RS256 or ES256, got %q", j.Algorithm)
	}
	switch {
	case j.Algorithm == "HS256" && (j.SecretFile == "" || j.PublicKeyFile != ""):
		v.fail(key, "HS256 verifies with secret_file, and only that")
	case j.Algorithm != "HS256" && (j.PublicKeyFile == "" || j.SecretFile != ""):
		v.fail(key, "%s verifies with public_key_file, and only that", j.Algorithm)
	}
	if j.Header != "" && !validHeaderName(j.Header) {
		v.fail(key+".header", "%q is not a header name", j.Header)
	}
}

// validate checks a route's canary, at key; pool is the route's own.
func (c *ForwardCanary) validate(v *validator, key, pool string, use poolUser) {
	switch {
	case c.Pool == "":
		v.fail(key, "pool missing: the pool that takes the canary's share")
	case c.Pool == pool:
		v.fail(key, "pool %q is the route's own pool", c.Pool)
	default:
		use.pool(key, c.Pool)
	}
	if c.Percent < 0 || c.Percent > 100 {
		v.fail(key, "percent must be 0 to 100, got %d", c.Percent)
	}
	if c.Guard != nil {
		c.Guard.validate(v, key+".guard")
	}
}

func (g *ForwardCanaryGuard) validate(v *validator, key string) {
	if g.Window.Duration != 0 && g.Window.Duration < 10*time.Millisecond {
		v.fail(key+".window", "must be at least 10ms, got %s", g.Window)
	}
	if g.Interval.Duration < 0 {
		v.fail(key+".interval", "must not be negative, got %s", g.Interval)
	}
	if g.MaxLatencyRatio != nil && *g.MaxLatencyRatio >= 0 && *g.MaxLatencyRatio < 1 {
		v.fail(key+".max_latency_ratio", "must be at least 1 (or negative: not judged), got %g", *g.MaxLatencyRatio)
	}
	if g.MinRequests < 0 {
		v.fail(key+".min_requests", "must not be negative, got %d", g.MinRequests)
	}
}

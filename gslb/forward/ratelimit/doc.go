// Package ratelimit limits HTTP requests per key for the forwarder's L7
// proxy: one Limiter per route, called on every request before it is
// proxied.
//
// # API
//
//	l, err := ratelimit.New(ratelimit.Config{...}) // validates; errors wrap ErrConfig
//	handler = l.Middleware(next)                   // answers 429/401/400 itself
//
// or, from a proxy that writes its own responses:
//
//	d := l.Allow(r)           // Decision: Allowed, Status, Reason, Remaining, Reset, RetryAfter
//	if !d.Allowed {
//		l.Reject(w, d)        // status, Retry-After, RateLimit headers, short body
//		return
//	}
//	l.WriteHeaders(w.Header(), d) // optional: the quota left, on allowed responses
//
// l.Stats() returns the counters for metrics: requests allowed, rejected
// by reason (limited, missing_key, invalid_token), keys in the table and
// keys evicted or expired.
//
// # Algorithms
//
// TokenBucket (Rate, Burst) keeps a golang.org/x/time/rate.Limiter per
// key, fed the injected clock through AllowN, so a key may spend Burst
// requests at once and then Rate a second.
//
// SlidingWindow (Limit, Window) is the two-window weighted approximation
// Cloudflare describes: counts for the current and the previous fixed
// window, the previous one weighted by the share of it still inside the
// sliding window, so a request at a fraction f into window k is allowed
// while prev×(1−f) + cur + 1 ≤ Limit. It needs three integers per key
// instead of a timestamp per request, and assumes requests were spread
// evenly over the previous window; the error is at most the previous
// window's unevenness.
//
// # Keys
//
// KeyClientIP limits by the address Config.ClientIP returns, which is
// where the proxy's trusted-proxies rules apply (by default the
// connection's peer address); IPv6 addresses are grouped by their
// IPv6PrefixLen (default /64) because one host commonly owns a whole /64.
// KeyAPIKey and KeyHeader limit by a request header's value. KeyJWTClaim
// verifies a JSON Web Token with a configured key (HS256 with a shared
// secret, RS256 or ES256 with a PEM public key) through
// github.com/golang-jwt/jwt/v5 with the algorithm pinned, so neither
// "none" nor a token signed for another algorithm is accepted, and limits
// by one of its claims ("sub" by default). Verified tokens are cached
// until they expire, since RS256 and ES256 verification costs tens of
// microseconds. A request without its key, or with a token that does not
// verify, is rejected (401 for an API key or token, 400 for another
// header) or, with Fallback set to FallbackClientIP, limited by its client
// address instead.
//
// # Key table
//
// Keys live in a table bounded by MaxKeys (an LRU from
// github.com/hashicorp/golang-lru/v2, split into shards so requests for
// different keys rarely wait for one lock). A key idle for KeyTTL is
// forgotten: the default KeyTTL is the time an idle key takes to get its
// whole quota back, so forgetting it changes nothing. Expiry runs on the
// injected clock, lazily: a lookup finds an idle key stale, and each new
// key first drops up to two stale keys from the cold end of its shard. A
// key evicted by the size cap starts again with a full quota, so MaxKeys
// should exceed the number of keys active within a KeyTTL. Header values
// longer than 64 bytes are kept as their SHA-256, so a key costs the
// table a bounded number of bytes whatever the client sends.
//
// # Headers
//
// Rejections carry Retry-After in whole seconds, rounded up, and the
// RateLimit-Policy and RateLimit fields in the structured-field form of
// draft-ietf-httpapi-ratelimit-headers-08 and later (-10 at the time of
// writing):
//
//	RateLimit-Policy: "api";q=100;w=60
//	RateLimit: "api";r=0;t=42
//
// For a sliding window q is Limit and w the Window in seconds; r is the
// requests left and t the seconds until the current window ends. For a
// token bucket q is Burst and w the seconds a drained bucket takes to
// fill (Burst/Rate, rounded up); t is the seconds until the bucket is full
// again. With Config.Headers the same fields go on allowed responses.
//
// # Logging
//
// One rejection in LogEvery is logged at Info with the policy, reason and
// key. Client addresses are logged as they are; every other key (API key,
// header value, JWT claim) only as the first 8 hex digits of its SHA-256,
// and tokens never.
package ratelimit

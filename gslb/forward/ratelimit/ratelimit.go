package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"
)

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("invalid rate limit config")

// Algorithm names how a key's requests are counted.
type Algorithm string

// The algorithms.
const (
	TokenBucket   Algorithm = "token_bucket"
	SlidingWindow Algorithm = "sliding_window"
)

// KeyKind names what a request is limited by.
type KeyKind string

// The key kinds.
const (
	KeyClientIP KeyKind = "ip"
	KeyAPIKey   KeyKind = "api_key"
	KeyHeader   KeyKind = "header"
	KeyJWTClaim KeyKind = "jwt_claim"
)

// Fallback says what happens to a request that lacks its key: no header,
// or a token that is missing or does not verify.
type Fallback string

// The fallbacks.
const (
	FallbackReject   Fallback = "reject"
	FallbackClientIP Fallback = "ip"
)

// Reason says why a request was refused.
type Reason string

// The reasons; an allowed request has none.
const (
	ReasonLimited      Reason = "limited"
	ReasonMissingKey   Reason = "missing_key"
	ReasonInvalidToken Reason = "invalid_token"
)

// Defaults, applied by New to zero fields.
const (
	DefaultName          = "default"
	DefaultAPIKeyHeader  = "X-API-Key"
	DefaultMaxKeys       = 100_000
	DefaultLogEvery      = 100
	DefaultIPv6PrefixLen = 64
)

// Config is one rate limit policy. New applies the defaults named in each
// field's comment and validates it.
type Config struct {
	// Name identifies the policy in the RateLimit headers and the logs.
	// Default "default". Must be a token (letters, digits, -_.).
	Name string
	// Algorithm is TokenBucket (default) or SlidingWindow.
	Algorithm Algorithm

	// Rate is the token bucket's refill in requests per second.
	Rate float64
	// Burst is the token bucket's size. Default: Rate rounded up.
	Burst int

	// Limit is the sliding window's requests per Window.
	Limit int
	// Window is the sliding window's length, at least a millisecond.
	Window time.Duration

	// Key is what requests are limited by. Default KeyClientIP.
	Key KeyKind
	// Header names the header holding the key: default "X-API-Key" for
	// KeyAPIKey, required for KeyHeader.
	Header string
	// JWT configures KeyJWTClaim.
	JWT JWTConfig
	// Fallback decides a request without its key (or with a bad token):
	// FallbackReject (default) refuses it, FallbackClientIP limits it by
	// client address.
	Fallback Fallback

	// ClientIP returns the request's client address, with the proxy's
	// trusted-proxies rules applied. Default: the host of r.RemoteAddr.
	ClientIP func(*http.Request) netip.Addr
	// IPv6PrefixLen is the prefix IPv6 client addresses are grouped by.
	// Default 64; 128 limits each address on its own.
	IPv6PrefixLen int

	// MaxKeys caps the keys tracked. Default 100000.
	MaxKeys int
	// KeyTTL is how long an idle key is kept. Default: the time an idle
	// key takes to regain its whole quota (Burst/Rate, or 2×Window).
	KeyTTL time.Duration

	// Headers adds RateLimit-Policy and RateLimit to allowed responses
	// too; rejections always carry them.
	Headers bool

	// LogEvery logs one rejection in LogEvery. Default 100; 1 logs all.
	LogEvery int
	// Log receives the sampled rejections; nil discards them.
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Decision is the outcome of Allow for one request.
type Decision struct {
	// Allowed is true when the request may go on.
	Allowed bool
	// Status is the HTTP status to refuse with: 429, 401 or 400; 0 when
	// allowed.
	Status int
	// Reason is why the request was refused; empty when allowed.
	Reason Reason
	// Remaining is the requests the key may still make now.
	Remaining int
	// Reset is the time until the key's quota is whole again (token
	// bucket) or its current window ends (sliding window).
	Reset time.Duration
	// RetryAfter is, for a request refused as limited, the time until the
	// key may make one more request.
	RetryAfter time.Duration
	// limited is set when the decision came from the key's counters, so
	// that the RateLimit fields have something to say.
	limited bool
}

// Stats are the Limiter's counters since New, for metrics.
type Stats struct {
	Allowed      uint64 // requests allowed
	Limited      uint64 // refused with 429
	MissingKey   uint64 // refused for lack of a key or token
	InvalidToken uint64 // refused for a token that did not verify
	Keys         int    // keys in the table now
	Evicted      uint64 // keys pushed out by MaxKeys
	Expired      uint64 // idle keys dropped after KeyTTL
}

// Rejected returns the requests refused for reason.
func (s Stats) Rejected(reason Reason) uint64 {
	switch reason {
	case ReasonLimited:
		return s.Limited
	case ReasonMissingKey:
		return s.MissingKey
	case ReasonInvalidToken:
		return s.InvalidToken
	}
	return 0
}

// Limiter applies one Config to requests. It is safe for concurrent use.
type Limiter struct {
	name      string
	algorithm Algorithm
	kind      KeyKind
	header    string
	fallback  Fallback
	clientIP  func(*http.Request) netip.Addr
	v6bits    int
	jwt       *verifier
	headers   bool

	// Token bucket.
	rate  float64
	burst int
	// Sliding window, in nanoseconds.
	limit  int
	window int64

	table *table
	now   func() time.Time

	// policy is the RateLimit-Policy value, built once.
	policy string

	log      *slog.Logger
	logEvery uint64

	allowed, limited, missingKey, invalidToken atomic.Uint64
	// rejections numbers rejections for log sampling.
	rejections atomic.Uint64
}

// New validates cfg and returns its Limiter.
func New(cfg Config) (*Limiter, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Limiter{
		name:      cfg.Name,
		algorithm: cfg.Algorithm,
		kind:      cfg.Key,
		header:    http.CanonicalHeaderKey(cfg.Header),
		fallback:  cfg.Fallback,
		clientIP:  cfg.ClientIP,
		v6bits:    cfg.IPv6PrefixLen,
		headers:   cfg.Headers,
		rate:      cfg.Rate,
		burst:     cfg.Burst,
		limit:     cfg.Limit,
		window:    int64(cfg.Window),
		table:     newTable(cfg.MaxKeys, cfg.KeyTTL),
		now:       cfg.Now,
		log:       cfg.Log,
		logEvery:  uint64(cfg.LogEvery),
	}
	if cfg.Key == KeyJWTClaim {
		v, err := newVerifier(cfg.JWT, cfg.Now)
		if err != nil {
			return nil, fmt.Errorf("%w: jwt: %w", ErrConfig, err)
		}
		l.jwt = v
	}
	q, w := l.quota()
	l.policy = fmt.Sprintf("%q;q=%d;w=%d", l.name, q, w)
	return l, nil
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Algorithm == "" {
		c.Algorithm = TokenBucket
	}
	if c.Key == "" {
		c.Key = KeyClientIP
	}
	if c.Key == KeyAPIKey && c.Header == "" {
		c.Header = DefaultAPIKeyHeader
	}
	if c.Fallback == "" {
		c.Fallback = FallbackReject
	}
	if c.ClientIP == nil {
		c.ClientIP = RemoteAddr
	}
	if c.IPv6PrefixLen == 0 {
		c.IPv6PrefixLen = DefaultIPv6PrefixLen
	}
	if c.Algorithm == TokenBucket && c.Burst == 0 && c.Rate > 0 && c.Rate < math.MaxInt32 {
		c.Burst = max(1, int(math.Ceil(c.Rate)))
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.KeyTTL == 0 {
		switch c.Algorithm {
		case TokenBucket:
			if c.Rate > 0 {
				c.KeyTTL = time.Duration(math.Ceil(float64(c.Burst) / c.Rate * float64(time.Second)))
			}
		case SlidingWindow:
			c.KeyTTL = 2 * c.Window
		}
	}
	if c.LogEvery == 0 {
		c.LogEvery = DefaultLogEvery
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if !isToken(c.Name) {
		return bad("name %q: only letters, digits, '-', '_' and '.'", c.Name)
	}
	switch c.Algorithm {
	case TokenBucket:
		if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
			return bad("rate %v: must be a positive number of requests per second", c.Rate)
		}
		if c.Burst < 1 {
			return bad("burst %d: must be at least 1", c.Burst)
		}
	case SlidingWindow:
		if c.Limit < 1 {
			return bad("limit %d: must be at least 1", c.Limit)
		}
		if c.Window < time.Millisecond {
			return bad("window %v: must be at least 1ms", c.Window)
		}
	default:
		return bad("algorithm %q: want %q or %q", c.Algorithm, TokenBucket, SlidingWindow)
	}
	switch c.Key {
	case KeyClientIP, KeyJWTClaim:
	case KeyAPIKey, KeyHeader:
		if c.Header == "" {
			return bad("header: required for key %q", c.Key)
		}
	default:
		return bad("key %q: want %q, %q, %q or %q", c.Key, KeyClientIP, KeyAPIKey, KeyHeader, KeyJWTClaim)
	}
	switch c.Fallback {
	case FallbackReject, FallbackClientIP:
	default:
		return bad("fallback %q: want %q or %q", c.Fallback, FallbackReject, FallbackClientIP)
	}
	if c.IPv6PrefixLen < 1 || c.IPv6PrefixLen > 128 {
		return bad("ipv6_prefix_len %d: must be 1 to 128", c.IPv6PrefixLen)
	}
	if c.MaxKeys < 1 {
		return bad("max_keys %d: must be at least 1", c.MaxKeys)
	}
	if c.KeyTTL <= 0 {
		return bad("key_ttl %v: must be positive", c.KeyTTL)
	}
	if c.LogEvery < 1 {
		return bad("log_every %d: must be at least 1", c.LogEvery)
	}
	return nil
}

// isToken reports whether s can be a policy name. The headers quote it,
// but a name that needs no escaping is one less thing to get wrong.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// RemoteAddr is the default Config.ClientIP: the connection's peer, which
// a client cannot forge. IPv4-mapped IPv6 addresses are unmapped.
func RemoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}

// Allow decides r and counts it against its key.
func (l *Limiter) Allow(r *http.Request) Decision {
	now := l.now()
	k, status, reason := l.key(r)
	if reason != "" {
		return l.refuse(r, Decision{Status: status, Reason: reason}, k)
	}
	e := l.table.get(k, now.UnixNano())
	var d Decision
	if l.algorithm == TokenBucket {
		d = e.takeToken(l, now)
	} else {
		d = e.takeWindow(l, now.UnixNano())
	}
	if !d.Allowed {
		d.Status, d.Reason = http.StatusTooManyRequests, ReasonLimited
		return l.refuse(r, d, k)
	}
	l.allowed.Add(1)
	return d
}

// key returns the table key for r, or the status and reason to refuse r
// with when it has none and may not fall back to its address.
func (l *Limiter) key(r *http.Request) (tableKey, int, Reason) {
	var (
		status int
		reason Reason
	)
	switch l.kind {
	case KeyClientIP:
		return l.ipKey(r), 0, ""
	case KeyAPIKey, KeyHeader:
		if v := r.Header.Get(l.header); v != "" {
			return valueKey(v), 0, ""
		}
		status, reason = http.StatusBadRequest, ReasonMissingKey
		if l.kind == KeyAPIKey {
			status = http.StatusUnauthorized
		}
	case KeyJWTClaim:
		claim, err := l.jwt.claim(r)
		if err == nil {
			return valueKey(claim), 0, ""
		}
		status, reason = http.StatusUnauthorized, ReasonInvalidToken
		if errors.Is(err, errNoToken) {
			reason = ReasonMissingKey
		}
	}
	if l.fallback == FallbackClientIP {
		return l.ipKey(r), 0, ""
	}
	return tableKey{}, status, reason
}

func (l *Limiter) ipKey(r *http.Request) tableKey {
	a := l.clientIP(r)
	if a.Is6() && !a.Is4In6() && l.v6bits < 128 {
		if p, err := a.Prefix(l.v6bits); err == nil {
			a = p.Addr()
		}
	}
	return tableKey{addr: a}
}

func (l *Limiter) refuse(r *http.Request, d Decision, k tableKey) Decision {
	switch d.Reason {
	case ReasonLimited:
		l.limited.Add(1)
	case ReasonMissingKey:
		l.missingKey.Add(1)
	case ReasonInvalidToken:
		l.invalidToken.Add(1)
	}
	if n := l.rejections.Add(1); (n-1)%l.logEvery == 0 {
		attrs := []any{"policy", l.name, "reason", d.Reason, "status", d.Status,
			"method", r.Method, "path", r.URL.Path, "sampled_1_in", l.logEvery}
		if d.Reason == ReasonLimited {
			attrs = append(attrs, "key_kind", l.keyKindOf(k), "key", k.String(), "retry_after", d.RetryAfter)
		}
		l.log.Info("rate limit rejected request", attrs...)
	}
	return d
}

// keyKindOf names the kind of k, which differs from l.kind when the
// request fell back to its address.
func (l *Limiter) keyKindOf(k tableKey) KeyKind {
	if k.addr.IsValid() || k.s == "" {
		return KeyClientIP
	}
	return l.kind
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	keys, evicted, expired := l.table.stats()
	return Stats{
		Allowed:      l.allowed.Load(),
		Limited:      l.limited.Load(),
		MissingKey:   l.missingKey.Load(),
		InvalidToken: l.invalidToken.Load(),
		Keys:         keys,
		Evicted:      evicted,
		Expired:      expired,
	}
}

// Name returns the policy's name.
func (l *Limiter) Name() string { return l.name }

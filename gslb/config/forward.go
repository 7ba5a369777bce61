package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the forwarder's configuration (meridian forward), each named
// so the reference in README.md can point at it.
const (
	DefaultForwardAdminListen  = "127.0.0.1:8054" // admin.listen: API, capacity endpoint and metrics
	DefaultBalance             = "round_robin"    // pool.balance
	DefaultHashKey             = "source_ip"      // pool.hash_key, for the hashing balancers
	DefaultInitialState        = "up"             // pool.initial_state of a backend before its first check
	DefaultAllUnhealthy        = "refuse"         // pool.all_unhealthy
	DefaultMinHealthy          = 1                // pool.min_healthy
	DefaultConnectTimeout      = 5 * time.Second  // pool.connect_timeout
	DefaultConnectAttempts     = 3                // pool.connect_attempts, each on another backend
	DefaultDrainTimeout        = 30 * time.Second // pool.drain_timeout
	DefaultBackendWeight       = 1                // pool.backend.weight
	DefaultConsecutiveFailures = 5                // pool.outlier.consecutive_failures
	DefaultBaseEjectionTime    = 30 * time.Second // pool.outlier.base_ejection_time
	DefaultMaxEjectionTime     = 5 * time.Minute  // pool.outlier.max_ejection_time
	DefaultMaxEjectionPercent  = 10               // pool.outlier.max_ejection_percent (one backend is always allowed)
	DefaultListenerMaxConns    = 10000            // listener.max_connections (tcp, tls)
	DefaultTCPIdle             = 5 * time.Minute  // listener.idle_timeout for tcp and tls
	DefaultUDPIdle             = 30 * time.Second // listener.idle_timeout for udp flows
	DefaultMaxFlows            = 10000            // listener.max_flows (udp)
	DefaultHandshakeTimeout    = 5 * time.Second  // listener.handshake_timeout: PROXY header and ClientHello
	DefaultHTTPIdle            = 60 * time.Second // listener.idle_timeout for http and https: keep-alive between requests
	DefaultReadHeaderTimeout   = 10 * time.Second // listener.read_header_timeout (http, https)
	DefaultMaxHeaderBytes      = 64 << 10         // listener.max_header_bytes (http, https)
	DefaultTLSMinVersion       = "1.2"            // listener.tls_min_version (https)
	DefaultCertificateReload   = 10 * time.Second // listener.certificate_reload: how often certificate files are read again
	DefaultRedirectCode        = 308              // listener.route.redirect_code: permanent, and the method is kept
	DefaultBackendScheme       = "http"           // pool.http.scheme
	DefaultTryTimeout          = 30 * time.Second // pool.http.timeout: per try, for the backend's response headers
	DefaultMaxIdlePerBackend   = 128              // pool.http.max_idle: keep-alive connections kept per backend
	DefaultBackendIdleTimeout  = 90 * time.Second // pool.http.idle_timeout of those connections
	DefaultRetries             = 1                // pool.http.retries, each on another backend
	DefaultRetryBudget         = 0.2              // pool.http.retry_budget: retries per request over the last 10 s
	DefaultRetryBudgetMin      = 3                // pool.http.retry_budget_min: retries per second allowed whatever the budget
	DefaultRetryBuffer         = 64 << 10         // pool.http.retry_buffer: request bodies up to this size can be replayed
	DefaultStickyCookiePrefix  = "meridian_"      // pool.sticky.cookie is this and the pool's name unless set
	DefaultBreakerInterval     = 10 * time.Second // pool.breaker.interval: the closed breaker's counts start over this often
	DefaultBreakerOpenTime     = 30 * time.Second // pool.breaker.open_time before a probe request is let through
	DefaultBreakerProbes       = 1                // pool.breaker.probes: requests let through half-open, all of which must pass
	DefaultAccessLogSample     = 1.0              // access_log.sample: every request
	maxBackendWeight           = 1_000_000
	maxBackendsPerPool         = 10_000
	maxConnectAttempts         = 10
	maxRetries                 = 10
	minCheckInterval           = 10 * time.Millisecond // check.interval, for DNS nodes and the forwarder
	minCertificateReload       = 10 * time.Millisecond
)

// MinStickyKey is the shortest pool.sticky.key_file, in bytes.
const MinStickyKey = 16

// DefaultRetryStatuses are pool.http.retry_statuses: answers that say the
// backend did not handle the request, so another may.
var DefaultRetryStatuses = []int{502, 503, 504}

// Choices of the forwarder's enumerated keys.
var (
	Balancers        = []string{"round_robin", "weighted_round_robin", "least_conn", "p2c", "source_hash", "maglev", "rendezvous"}
	hashingBalancers = []string{"source_hash", "maglev", "rendezvous"}
	hashKeys         = []string{"source_ip", "source_addr", "sni"}
	initialStates    = []string{"up", "down", "unknown"}
	allUnhealthy     = []string{"refuse", "panic"}
	proxyVersions    = []string{"", "off", "v1", "v2"}
	listenerProtos   = []string{"tcp", "tls", "udp", "http", "https"}
	backendSchemes   = []string{"http", "https"}
	stickyModes      = []string{"", "cookie", "source_ip", "header"}
	tlsVersions      = []string{"1.2", "1.3"}
	redirectCodes    = []int{301, 302, 303, 307, 308}
)

// Hashing reports whether a balancer picks by hashing hash_key.
func Hashing(balance string) bool { return slices.Contains(hashingBalancers, balance) }

// Forward is the whole of a forwarder's TOML file (meridian forward).
type Forward struct {
	Path       string             `toml:"-"` // the file it was read from
	Log        ForwardLog         `toml:"log"`
	Admin      ForwardAdmin       `toml:"admin"`
	Health     ForwardHealth      `toml:"health"`
	AccessLog  ForwardAccessLog   `toml:"access_log"`
	RateLimits []ForwardRateLimit `toml:"rate_limit"`
	Pools      []ForwardPool      `toml:"pool"`
	Listeners  []ForwardListener  `toml:"listener"`

	lines          keyIndex
	rateLimitNames map[string]bool // for the routes' references, while validating
}

// ForwardAccessLog configures the JSON access log of the http and https
// listeners: one line per request with the route that matched and the
// backend that answered.
type ForwardAccessLog struct {
	Path string `toml:"path"` // a file (appended to), "stdout" or "stderr"; "" logs nothing
	// Sample is the share of requests logged, 0 to 1.
	Sample *float64 `toml:"sample"`
}

// IsHTTP reports whether the listener is an L7 one (http or https).
func (l *ForwardListener) IsHTTP() bool { return l.Protocol == "http" || l.Protocol == "https" }

// ForwardLog configures the forwarder's logs, as [log] does serve's.
type ForwardLog struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// ForwardAdmin configures the forwarder's HTTP endpoints: the backend
// listing, drains, the capacity endpoint and /metrics.
type ForwardAdmin struct {
	Listen    string `toml:"listen"`     // host:port; "off" disables it
	TokenFile string `toml:"token_file"` // bearer token for drains; without it they are refused
	OpenReads *bool  `toml:"open_reads"` // reads without the token; default true
}

// ReadsOpen reports the effective OpenReads.
func (a ForwardAdmin) ReadsOpen() bool { return a.OpenReads == nil || *a.OpenReads }

// ForwardHealth configures a listener of its own for the capacity endpoint,
// so that GSLB probes from other regions can reach it while the admin API
// stays on a private address.
type ForwardHealth struct {
	Listen string `toml:"listen"` // host:port; "" serves it on admin.listen only
}

// ForwardPool is a set of backends that share a balancer, health checks
// and outlier detection.
type ForwardPool struct {
	Name    string `toml:"name"`
	Balance string `toml:"balance"` // one of Balancers
	// HashKey is what the hashing balancers hash: source_ip,
	// source_addr (address and port) or sni (tls listeners only).
	HashKey string `toml:"hash_key"`
	// MinHealthy is the number of healthy backends the capacity endpoint
	// needs to answer 200.
	MinHealthy int `toml:"min_healthy"`
	// AllUnhealthy is what happens when no backend is healthy: refuse
	// connections, or panic (spread them over every backend not draining,
	// as Envoy's panic mode does).
	AllUnhealthy string `toml:"all_unhealthy"`
	// InitialState is a new backend's health before its first check: up,
	// down, or unknown (out of rotation until the first result, which
	// decides at once).
	InitialState    string           `toml:"initial_state"`
	SlowStart       Duration         `toml:"slow_start"` // weight ramp after (re)joining; 0 = none
	ConnectTimeout  Duration         `toml:"connect_timeout"`
	ConnectAttempts int              `toml:"connect_attempts"` // backends tried per connection
	DrainTimeout    Duration         `toml:"drain_timeout"`    // how long established connections may outlive a drain
	ProxyProtocol   string           `toml:"proxy_protocol"`   // PROXY header to backends: v1, v2, or "" / off
	MaxConnections  int              `toml:"max_connections"`  // per backend, unless it says otherwise; 0 = no limit
	Check           Check            `toml:"check"`
	Outlier         Outlier          `toml:"outlier"`
	HTTP            ForwardPoolHTTP  `toml:"http"`    // how http and https listeners talk to the backends
	Sticky          ForwardSticky    `toml:"sticky"`  // session affinity, for http and https listeners
	Breaker         ForwardBreaker   `toml:"breaker"` // a circuit breaker per backend
	Backends        []ForwardBackend `toml:"backend"`
}

// ForwardPoolHTTP is how the L7 proxy talks to a pool's backends.
type ForwardPoolHTTP struct {
	Scheme string `toml:"scheme"` // http, or https to re-encrypt
	// ServerName is the name an https backend's certificate is verified
	// against and the SNI sent; default the backend's host.
	ServerName string `toml:"server_name"`
	CAFile     string `toml:"ca_file"` // https: verify against these CAs instead of the system's
	HTTP2      bool   `toml:"http2"`   // https: offer HTTP/2 to the backends
	// Host replaces the Host header sent to the backends; default the
	// client's.
	Host        string   `toml:"host"`
	Timeout     Duration `toml:"timeout"`      // per try: the response headers must come within it
	MaxIdle     int      `toml:"max_idle"`     // idle keep-alive connections kept per backend
	IdleTimeout Duration `toml:"idle_timeout"` // how long they are kept
	// Retries is how many times an idempotent request is tried again, on
	// another backend, after an answer in RetryStatuses (or a timeout, with
	// RetryTimeout). Connection failures are retried apart from these, up
	// to the pool's connect_attempts, whatever the method.
	Retries            *int  `toml:"retries"`
	RetryStatuses      []int `toml:"retry_statuses"`
	RetryTimeout       bool  `toml:"retry_timeout"`        // retry a try that timed out
	RetryNonIdempotent bool  `toml:"retry_non_idempotent"` // retry POST, PATCH and the like too
	// RetryBudget caps retries at this share of the pool's requests over
	// the last 10 seconds, plus RetryBudgetMin a second, so that retries
	// cannot multiply the load of an outage.
	RetryBudget    *float64 `toml:"retry_budget"`
	RetryBudgetMin *int     `toml:"retry_budget_min"`
	// RetryBuffer is the largest request body kept to be sent again;
	// requests with larger bodies are not retried once sent.
	RetryBuffer *int `toml:"retry_buffer"`
}

// ForwardSticky pins a client to a backend across requests.
type ForwardSticky struct {
	// Mode is cookie (the forwarder sets a signed cookie naming the
	// backend), source_ip (the client's address, through trusted
	// proxies), header (a request header's value), or "" for none.
	Mode    string   `toml:"mode"`
	Cookie  string   `toml:"cookie"`   // the cookie's name
	KeyFile string   `toml:"key_file"` // cookie: the HMAC key that signs it, at least 16 bytes
	MaxAge  Duration `toml:"max_age"`  // cookie: its lifetime; 0 makes it a session cookie
	Header  string   `toml:"header"`   // header: the header whose value pins
}

// ForwardBreaker is a circuit breaker per backend: it opens after
// failures (connection failures, and for HTTP 5xx answers and timeouts),
// keeps the backend out of rotation for OpenTime, then lets Probes requests
// through, which close it if they all pass.
type ForwardBreaker struct {
	ConsecutiveFailures int      `toml:"consecutive_failures"` // failures in a row that open it; 0: not by count
	FailureRatio        float64  `toml:"failure_ratio"`        // share of failures that opens it; 0: not by ratio
	MinRequests         int      `toml:"min_requests"`         // requests in the interval before the ratio counts
	Interval            Duration `toml:"interval"`             // closed: the counts start over this often
	OpenTime            Duration `toml:"open_time"`
	Probes              int      `toml:"probes"`
}

// Enabled reports whether the pool has a circuit breaker.
func (b ForwardBreaker) Enabled() bool { return b.ConsecutiveFailures > 0 || b.FailureRatio > 0 }

// Outlier configures passive health: ejection of backends that fail live
// connections.
type Outlier struct {
	// ConsecutiveFailures is the number of connect failures in a row that
	// eject a backend; 0 disables outlier detection.
	ConsecutiveFailures *int `toml:"consecutive_failures"`
	// An ejection lasts BaseEjectionTime times the number of times the
	// backend was ejected in a row, up to MaxEjectionTime.
	BaseEjectionTime Duration `toml:"base_ejection_time"`
	MaxEjectionTime  Duration `toml:"max_ejection_time"`
	// MaxEjectionPercent caps the share of the pool ejected at once; one
	// backend may always be.
	MaxEjectionPercent *int `toml:"max_ejection_percent"`
}

// ForwardBackend is one server of a pool.
type ForwardBackend struct {
	Address        string `toml:"address"` // host:port
	Weight         *int   `toml:"weight"`
	MaxConnections *int   `toml:"max_connections"` // overrides the pool's
	Drain          bool   `toml:"drain"`           // no new connections
	// CheckAddress is checked instead of the backend's address (a
	// separate health port).
	CheckAddress string `toml:"check_address"`
}

// ForwardListener is an address the forwarder accepts clients on.
type ForwardListener struct {
	Name     string `toml:"name"`
	Protocol string `toml:"protocol"` // tcp, tls (passthrough routed by SNI), udp
	Listen   string `toml:"listen"`   // ip:port
	Pool     string `toml:"pool"`     // the pool, or for tls the pool of names no route matches
	// MaxConnections caps the connections open at once (tcp, tls); the
	// ones past it are closed on accept.
	MaxConnections int      `toml:"max_connections"`
	IdleTimeout    Duration `toml:"idle_timeout"` // no byte either way for this long closes the connection or flow
	// HandshakeTimeout bounds the wait for a PROXY header and a
	// ClientHello.
	HandshakeTimeout    Duration       `toml:"handshake_timeout"`
	AcceptProxyProtocol bool           `toml:"accept_proxy_protocol"` // clients come through a load balancer that sends PROXY v1 or v2
	MaxFlows            int            `toml:"max_flows"`             // udp: clients tracked at once; new ones past it are dropped
	Routes              []ForwardRoute `toml:"route"`                 // tls: SNI routes; http, https: request routes

	// http and https.

	// TrustedProxies are the addresses (CIDR or IP) whose X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are
	// believed; from anyone else they are replaced.
	TrustedProxies    []string          `toml:"trusted_proxies"`
	ReadHeaderTimeout Duration          `toml:"read_header_timeout"` // a request's headers must arrive within it
	ReadTimeout       Duration          `toml:"read_timeout"`        // the whole request, body included; 0: no limit
	WriteTimeout      Duration          `toml:"write_timeout"`       // the whole response; 0: no limit
	MaxHeaderBytes    int               `toml:"max_header_bytes"`    // request line and headers
	MaxBodyBytes      int64             `toml:"max_body_bytes"`      // request body; 0: no limit
	H2C               bool              `toml:"h2c"`                 // http: accept HTTP/2 without TLS (prior knowledge)
	ResponseHeaders   map[string]string `toml:"response_headers"`    // set on every response (HSTS and the like)
	Metrics           *bool             `toml:"metrics"`             // per-request metrics; default true
	// FastPath lets plain HTTP/1.1 requests (no upgrade, a body of a few
	// KiB at most, to routes without rate limits or HTTPS backends) skip
	// net/http; default true.
	FastPath *bool `toml:"fast_path"`
	// https: certificates, chosen by the ClientHello's server name, and
	// read again from their files every CertificateReload.
	TLSMinVersion     string               `toml:"tls_min_version"`
	CertificateReload Duration             `toml:"certificate_reload"`
	Certificates      []ForwardCertificate `toml:"certificate"`
}

// ForwardCertificate is a certificate chain and its key, PEM files.
type ForwardCertificate struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// ForwardRoute is a route of a listener. On a tls listener it sends
// connections whose SNI matches one of its names to a pool: a name is
// exact ("api.example.com") or a wildcard for one label ("*.example.com").
// On an http or https listener it matches requests, by host, path,
// method, headers, cookies and query parameters (all that are set must
// match), and sends them to a pool, redirects them, or answers itself.
type ForwardRoute struct {
	SNI  []string `toml:"sni"`
	Pool string   `toml:"pool"`

	Name       string            `toml:"name"`        // in logs, metrics and the admin API; default "route-N"
	Host       []string          `toml:"host"`        // exact, or "*.example.com" for one label
	Path       string            `toml:"path"`        // exact
	PathPrefix string            `toml:"path_prefix"` // "/api/" matches /api/ and below; "/api" also /api and /apis
	PathRegexp string            `toml:"path_regexp"` // RE2, unanchored unless written so
	Method     []string          `toml:"method"`
	Header     map[string]string `toml:"header"` // name = value; "*" for any value
	Cookie     map[string]string `toml:"cookie"`
	Query      map[string]string `toml:"query"`

	StripPrefix string `toml:"strip_prefix"` // removed from the path sent to the backend
	// ReplacePath is the path sent to the backend instead; with
	// path_regexp, $1 and ${name} expand to its groups.
	ReplacePath  string          `toml:"replace_path"`
	Redirect     string          `toml:"redirect"`      // a URL; {host}, {port}, {path}, {query} and {uri} expand
	RedirectCode int             `toml:"redirect_code"` // 301, 302, 303, 307 or 308
	Respond      *ForwardRespond `toml:"respond"`       // a fixed answer
	Canary       *ForwardCanary  `toml:"canary"`        // a share of the route's requests to another pool
	RateLimit    string          `toml:"rate_limit"`    // the [[rate_limit]] policy applied first
}

// ForwardRespond is a route's fixed answer.
type ForwardRespond struct {
	Status      int    `toml:"status"`
	Body        string `toml:"body"`
	ContentType string `toml:"content_type"` // default text/plain; charset=utf-8
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

// RouteName returns the name of route j, given or default.
func (r *ForwardRoute) RouteName(j int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("route-%d", j)
}

// MetricsOn reports whether the listener keeps per-request metrics.
func (l *ForwardListener) MetricsOn() bool { return l.Metrics == nil || *l.Metrics }

// FastPathOn reports whether the listener's plain requests take the
// HTTP/1.1 fast path.
func (l *ForwardListener) FastPathOn() bool { return l.FastPath == nil || *l.FastPath }

// ResolvePath resolves a file named in the configuration against the
// configuration file's folder.
func (f *Forward) ResolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(f.Path), p)
}

// LineOf returns the line key ("pool[1].balance") is written on, or its
// table's, for errors found after decoding.
func (f *Forward) LineOf(key string) int { return f.lines.line(key) }

// Errorf formats an error about key, located in the config file.
func (f *Forward) Errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", f.Path, f.LineOf(key), key, fmt.Sprintf(format, args...))
}

// LoadForward reads, decodes, defaults and validates a forwarder's file.
func LoadForward(path string) (*Forward, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseForward(path, src)
}

// ParseForward decodes src as if read from path.
func ParseForward(path string, src []byte) (*Forward, error) {
	f := &Forward{
		Path:  path,
		Log:   ForwardLog{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Admin: ForwardAdmin{Listen: DefaultForwardAdminListen},
	}
	lines, errs, err := decodeStrict(path, src, f)
	if err != nil {
		return nil, err
	}
	f.lines = lines
	f.applyDefaults()
	v := validator{file: path, lines: lines}
	f.validate(&v)
	errs = append(errs, v.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func (f *Forward) applyDefaults() {
	setDuration := func(d *Duration, def time.Duration) {
		if d.Duration == 0 {
			d.Duration = def
		}
	}
	for i := range f.Pools {
		p := &f.Pools[i]
		p.Balance = strings.ToLower(cmp.Or(p.Balance, DefaultBalance))
		p.HashKey = strings.ToLower(cmp.Or(p.HashKey, DefaultHashKey))
		p.AllUnhealthy = strings.ToLower(cmp.Or(p.AllUnhealthy, DefaultAllUnhealthy))
		p.InitialState = strings.ToLower(cmp.Or(p.InitialState, DefaultInitialState))
		p.ProxyProtocol = strings.ToLower(p.ProxyProtocol)
		if p.ProxyProtocol == "off" {
			p.ProxyProtocol = ""
		}
		if p.MinHealthy == 0 {
			p.MinHealthy = DefaultMinHealthy
		}
		if p.ConnectAttempts == 0 {
			p.ConnectAttempts = DefaultConnectAttempts
		}
		setDuration(&p.ConnectTimeout, DefaultConnectTimeout)
		// drain_timeout = "0s" is meaningful (close at once), so only an
		// absent key takes the default.
		if !f.lines.has(fmt.Sprintf("pool[%d].drain_timeout", i)) {
			p.DrainTimeout.Duration = DefaultDrainTimeout
		}
		o := &p.Outlier
		if o.ConsecutiveFailures == nil {
			o.ConsecutiveFailures = ptr(DefaultConsecutiveFailures)
		}
		if o.MaxEjectionPercent == nil {
			o.MaxEjectionPercent = ptr(DefaultMaxEjectionPercent)
		}
		setDuration(&o.BaseEjectionTime, DefaultBaseEjectionTime)
		setDuration(&o.MaxEjectionTime, max(DefaultMaxEjectionTime, o.BaseEjectionTime.Duration))
		applyCheckDefaults(&p.Check)
		h := &p.HTTP
		h.Scheme = strings.ToLower(cmp.Or(h.Scheme, DefaultBackendScheme))
		setDuration(&h.Timeout, DefaultTryTimeout)
		setDuration(&h.IdleTimeout, DefaultBackendIdleTimeout)
		h.MaxIdle = cmp.Or(h.MaxIdle, DefaultMaxIdlePerBackend)
		if h.Retries == nil {
			h.Retries = ptr(DefaultRetries)
		}
		if h.RetryStatuses == nil {
			h.RetryStatuses = slices.Clone(DefaultRetryStatuses)
		}
		if h.RetryBudget == nil {
			h.RetryBudget = ptr(DefaultRetryBudget)
		}
		if h.RetryBudgetMin == nil {
			h.RetryBudgetMin = ptr(DefaultRetryBudgetMin)
		}
		if h.RetryBuffer == nil {
			h.RetryBuffer = ptr(DefaultRetryBuffer)
		}
		st := &p.Sticky
		st.Mode = strings.ToLower(st.Mode)
		if st.Mode == "cookie" {
			st.Cookie = cmp.Or(st.Cookie, DefaultStickyCookiePrefix+p.Name)
		}
		st.Header = http.CanonicalHeaderKey(st.Header)
		br := &p.Breaker
		setDuration(&br.Interval, DefaultBreakerInterval)
		setDuration(&br.OpenTime, DefaultBreakerOpenTime)
		br.Probes = cmp.Or(br.Probes, DefaultBreakerProbes)
		for j := range p.Backends {
			b := &p.Backends[j]
			if b.Weight == nil {
				b.Weight = ptr(DefaultBackendWeight)
			}
			if b.MaxConnections == nil {
				b.MaxConnections = ptr(p.MaxConnections)
			}
		}
	}
	for i := range f.Listeners {
		l := &f.Listeners[i]
		l.Protocol = strings.ToLower(cmp.Or(l.Protocol, "tcp"))
		if l.MaxConnections == 0 {
			l.MaxConnections = DefaultListenerMaxConns
		}
		if l.MaxFlows == 0 {
			l.MaxFlows = DefaultMaxFlows
		}
		switch {
		case l.Protocol == "udp":
			setDuration(&l.IdleTimeout, DefaultUDPIdle)
		case l.IsHTTP():
			setDuration(&l.IdleTimeout, DefaultHTTPIdle)
		default:
			setDuration(&l.IdleTimeout, DefaultTCPIdle)
		}
		setDuration(&l.HandshakeTimeout, DefaultHandshakeTimeout)
		setDuration(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
		setDuration(&l.CertificateReload, DefaultCertificateReload)
		l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
		l.TLSMinVersion = cmp.Or(l.TLSMinVersion, DefaultTLSMinVersion)
		for j := range l.Routes {
			r := &l.Routes[j]
			for k, name := range r.SNI {
				r.SNI[k] = strings.ToLower(strings.TrimSuffix(name, "."))
			}
			for k, name := range r.Host {
				r.Host[k] = strings.ToLower(strings.TrimSuffix(name, "."))
			}
			for k, m := range r.Method {
				r.Method[k] = strings.ToUpper(m)
			}
			r.Header = canonicalKeys(r.Header)
			if r.Redirect != "" && r.RedirectCode == 0 {
				r.RedirectCode = DefaultRedirectCode
			}
			if r.Respond != nil {
				r.Respond.ContentType = cmp.Or(r.Respond.ContentType, "text/plain; charset=utf-8")
			}
		}
	}
	if f.AccessLog.Sample == nil {
		f.AccessLog.Sample = ptr(DefaultAccessLogSample)
	}
	for i := range f.RateLimits {
		rl := &f.RateLimits[i]
		rl.Algorithm = strings.ToLower(cmp.Or(rl.Algorithm, "token_bucket"))
		rl.Key = strings.ToLower(cmp.Or(rl.Key, "ip"))
		rl.Fallback = strings.ToLower(cmp.Or(rl.Fallback, "reject"))
		if rl.Header != "" {
			rl.Header = http.CanonicalHeaderKey(rl.Header)
		}
		rl.JWT.Algorithm = strings.ToUpper(rl.JWT.Algorithm)
	}
}

// canonicalKeys returns m with its keys as HTTP header names.
func canonicalKeys(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

func (f *Forward) validate(v *validator) {
	validateLog(v, &f.Log.Level, &f.Log.Format)
	if f.Admin.Listen != "off" {
		if _, _, err := net.SplitHostPort(f.Admin.Listen); err != nil {
			v.fail("admin.listen", "%q is not host:port (or \"off\")", f.Admin.Listen)
		}
	}
	if f.Health.Listen != "" {
		if _, _, err := net.SplitHostPort(f.Health.Listen); err != nil {
			v.fail("health.listen", "%q is not host:port", f.Health.Listen)
		}
	}
	if s := *f.AccessLog.Sample; s < 0 || s > 1 {
		v.fail("access_log.sample", "must be 0 to 1 (a share of requests), got %g", s)
	}
	limits := map[string]bool{}
	for i := range f.RateLimits {
		key := fmt.Sprintf("rate_limit[%d]", i)
		rl := &f.RateLimits[i]
		switch {
		case rl.Name == "":
			v.fail(key+".name", "missing: routes name the policy they apply")
		case !policyName(rl.Name):
			v.fail(key+".name", "%q: up to 64 letters, digits, - _ and . only (it is sent in RateLimit headers)", rl.Name)
		case limits[rl.Name]:
			v.fail(key+".name", "rate limit %q is defined twice", rl.Name)
		}
		limits[rl.Name] = true
		validateRateLimit(v, key, rl)
	}
	f.rateLimitNames = limits
	if len(f.Pools) == 0 {
		v.errs = append(v.errs, fmt.Errorf("%s: no [[pool]] configured: the forwarder needs backends to forward to", v.file))
	}
	pools := map[string]*ForwardPool{}
	for i := range f.Pools {
		p := &f.Pools[i]
		key := fmt.Sprintf("pool[%d]", i)
		switch {
		case p.Name == "":
			v.fail(key+".name", "missing: every pool needs a name")
		case strings.ContainsAny(p.Name, "/ "):
			v.fail(key+".name", "%q: a pool name has no slash or space (it is part of URLs)", p.Name)
		case pools[p.Name] != nil:
			v.fail(key+".name", "pool %q is defined twice", p.Name)
		}
		pools[p.Name] = p
		f.validatePool(v, key, p)
	}
	if len(f.Listeners) == 0 {
		v.errs = append(v.errs, fmt.Errorf("%s: no [[listener]] configured: the forwarder needs an address to accept clients on", v.file))
	}
	names := map[string]bool{}
	addrs := map[string]string{} // "tcp 127.0.0.1:80" -> listener
	for i := range f.Listeners {
		l := &f.Listeners[i]
		key := fmt.Sprintf("listener[%d]", i)
		switch {
		case l.Name == "":
			v.fail(key+".name", "missing: every listener needs a name (metrics and logs use it)")
		case names[l.Name]:
			v.fail(key+".name", "listener %q is defined twice", l.Name)
		}
		names[l.Name] = true
		if !slices.Contains(listenerProtos, l.Protocol) {
			v.fail(key+".protocol", "must be one of %s, got %q", strings.Join(listenerProtos, ", "), l.Protocol)
			continue
		}
		if msg := checkListen(l.Listen); msg != "" {
			v.fail(key+".listen", "%s", msg)
		} else {
			network := "tcp"
			if l.Protocol == "udp" {
				network = "udp"
			}
			ak := network + " " + l.Listen
			if other, dup := addrs[ak]; dup && !strings.HasSuffix(l.Listen, ":0") {
				v.fail(key+".listen", "%s %s is also listener %q's", network, l.Listen, other)
			}
			addrs[ak] = l.Name // port 0 is any free port: never the same twice
		}
		usePool := func(k, name string) {
			p := pools[name]
			switch {
			case p == nil:
				v.fail(k, "no [[pool]] is named %q", name)
			case l.Protocol != "tls" && l.Protocol != "https" && p.HashKey == "sni" && Hashing(p.Balance):
				v.fail(k, "pool %q hashes on sni, which only tls and https listeners read", name)
			case l.Protocol == "udp" && p.ProxyProtocol != "":
				v.fail(k, "pool %q sends a PROXY header, which the forwarder sends over TCP only", name)
			case l.IsHTTP() && p.ProxyProtocol != "":
				v.fail(k, "pool %q sends a PROXY header, which http listeners cannot: their connections to backends carry many clients' requests", name)
			}
		}
		if l.Pool != "" {
			usePool(key+".pool", l.Pool)
		} else if (l.Protocol != "tls" && !l.IsHTTP()) || len(l.Routes) == 0 {
			v.fail(key+".pool", "missing: the pool to forward to")
		}
		if l.MaxConnections < 1 {
			v.fail(key+".max_connections", "must be at least 1, got %d", l.MaxConnections)
		}
		if l.MaxFlows < 1 {
			v.fail(key+".max_flows", "must be at least 1, got %d", l.MaxFlows)
		}
		if l.IdleTimeout.Duration < 0 {
			v.fail(key+".idle_timeout", "must be positive, got %s", l.IdleTimeout)
		}
		if l.HandshakeTimeout.Duration < 0 {
			v.fail(key+".handshake_timeout", "must be positive, got %s", l.HandshakeTimeout)
		}
		if l.Protocol == "udp" && l.AcceptProxyProtocol {
			v.fail(key+".accept_proxy_protocol", "is for tcp and tls listeners")
		}
		if l.IsHTTP() {
			f.validateHTTPListener(v, key, l, usePool)
			continue
		}
		f.refuseHTTPKeys(v, key, l)
		if l.Protocol != "tls" && len(l.Routes) > 0 {
			v.fail(key+".route", "SNI routes need protocol = \"tls\" (request routes: \"http\" or \"https\")")
		}
		seen := map[string]bool{}
		for j, r := range l.Routes {
			rkey := fmt.Sprintf("%s.route[%d]", key, j)
			usePool(rkey+".pool", r.Pool)
			if len(r.SNI) == 0 {
				v.fail(rkey+".sni", "missing: the server names this route matches")
			}
			if r.hasHTTPMatch() {
				v.fail(rkey, "matches on requests, which only http and https listeners read: a tls route matches sni")
			}
			for _, name := range r.SNI {
				if msg := checkSNI(name); msg != "" {
					v.fail(rkey+".sni", "%q: %s", name, msg)
				}
				if seen[name] {
					v.fail(rkey+".sni", "%q is routed twice", name)
				}
				seen[name] = true
			}
		}
	}
}

// refuseHTTPKeys fails the keys of http listeners set on another kind.
func (f *Forward) refuseHTTPKeys(v *validator, key string, l *ForwardListener) {
	set := map[string]bool{
		"trusted_proxies": len(l.TrustedProxies) > 0, "read_timeout": l.ReadTimeout.Duration != 0,
		"write_timeout": l.WriteTimeout.Duration != 0, "max_body_bytes": l.MaxBodyBytes != 0, "h2c": l.H2C,
		"response_headers": len(l.ResponseHeaders) > 0, "metrics": l.Metrics != nil, "fast_path": l.FastPath != nil, "certificate": len(l.Certificates) > 0,
	}
	for _, k := range []string{"read_header_timeout", "max_header_bytes", "tls_min_version", "certificate_reload"} {
		set[k] = f.lines.has(key + "." + k)
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] {
			v.fail(key+"."+k, "is for http and https listeners, not %s", l.Protocol)
		}
	}
}

// validateHTTPListener checks the keys of an http or https listener and
// its request routes.
func (f *Forward) validateHTTPListener(v *validator, key string, l *ForwardListener, usePool func(k, name string)) {
	for _, tp := range l.TrustedProxies {
		if _, err := ParsePrefixOrAddr(tp); err != nil {
			v.fail(key+".trusted_proxies", "%q is neither a CIDR prefix nor an IP address", tp)
		}
	}
	for name, d := range map[string]Duration{"read_header_timeout": l.ReadHeaderTimeout, "read_timeout": l.ReadTimeout, "write_timeout": l.WriteTimeout} {
		if d.Duration < 0 {
			v.fail(key+"."+name, "must not be negative, got %s", d)
		}
	}
	if l.MaxHeaderBytes < 1024 {
		v.fail(key+".max_header_bytes", "must be at least 1024, got %d", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 0 {
		v.fail(key+".max_body_bytes", "must not be negative (0 is no limit), got %d", l.MaxBodyBytes)
	}
	for name := range l.ResponseHeaders {
		if !validHeaderName(name) {
			v.fail(key+".response_headers", "%q is not a header name", name)
		}
	}
	if l.Protocol == "https" {
		if l.H2C {
			v.fail(key+".h2c", "is HTTP/2 without TLS: for http listeners (https ones speak HTTP/2 over TLS anyway)")
		}
		if !slices.Contains(tlsVersions, l.TLSMinVersion) {
			v.fail(key+".tls_min_version", "must be 1.2 or 1.3, got %q", l.TLSMinVersion)
		}
		if l.CertificateReload.Duration < minCertificateReload {
			v.fail(key+".certificate_reload", "must be at least %s, got %s", minCertificateReload, l.CertificateReload)
		}
		if len(l.Certificates) == 0 {
			v.fail(key+".certificate", "missing: an https listener needs at least one [[listener.certificate]]")
		}
		for j, c := range l.Certificates {
			ckey := fmt.Sprintf("%s.certificate[%d]", key, j)
			if c.CertFile == "" {
				v.fail(ckey+".cert_file", "missing: the PEM certificate chain")
			}
			if c.KeyFile == "" {
				v.fail(ckey+".key_file", "missing: the PEM private key")
			}
		}
	} else {
		for _, k := range []string{"tls_min_version", "certificate_reload"} {
			if f.lines.has(key + "." + k) {
				v.fail(key+"."+k, "is for https listeners")
			}
		}
		if len(l.Certificates) > 0 {
			v.fail(key+".certificate", "is for https listeners")
		}
	}
	names := map[string]bool{}
	for j := range l.Routes {
		r := &l.Routes[j]
		rkey := fmt.Sprintf("%s.route[%d]", key, j)
		name := r.RouteName(j)
		switch {
		case strings.ContainsAny(name, "/ ?#%"):
			v.fail(rkey+".name", "%q: a route name has no slash, space, ?, # or %% (it is part of URLs)", name)
		case name == "default" || name == "no_route":
			v.fail(rkey+".name", "%q names the requests no route takes: choose another name", name)
		case names[name]:
			v.fail(rkey+".name", "route %q is defined twice on this listener", name)
		}
		names[name] = true
		validateHTTPRoute(v, rkey, r, usePool)
		if r.RateLimit != "" && !f.rateLimitNames[r.RateLimit] {
			v.fail(rkey+".rate_limit", "no [[rate_limit]] is named %q", r.RateLimit)
		}
	}
}

var (
	rateAlgorithms = []string{"token_bucket", "sliding_window"}
	rateKeys       = []string{"ip", "api_key", "header", "jwt_claim"}
	rateFallbacks  = []string{"reject", "ip"}
	jwtAlgorithms  = []string{"HS256", "RS256", "ES256"}
)

// validateRateLimit checks what can be checked without the key files;
// the rest is the rate limiter's to say when the forwarder loads them.
func validateRateLimit(v *validator, key string, rl *ForwardRateLimit) {
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
	j := rl.JWT
	if rl.Key != "jwt_claim" {
		if j != (ForwardJWT{}) {
			v.fail(key+".jwt", "is for key = \"jwt_claim\"")
		}
		return
	}
	if !slices.Contains(jwtAlgorithms, j.Algorithm) {
		v.fail(key+".jwt.algorithm", "must be HS256, RS256 or ES256, got %q", j.Algorithm)
	}
	switch {
	case j.Algorithm == "HS256" && (j.SecretFile == "" || j.PublicKeyFile != ""):
		v.fail(key+".jwt", "HS256 verifies with secret_file, and only that")
	case j.Algorithm != "HS256" && (j.PublicKeyFile == "" || j.SecretFile != ""):
		v.fail(key+".jwt", "%s verifies with public_key_file, and only that", j.Algorithm)
	}
	if j.Header != "" && !validHeaderName(j.Header) {
		v.fail(key+".jwt.header", "%q is not a header name", j.Header)
	}
}

// hasHTTPMatch reports whether a route sets any key of request routes.
func (r *ForwardRoute) hasHTTPMatch() bool {
	return r.Name != "" || len(r.Host) > 0 || r.Path != "" || r.PathPrefix != "" || r.PathRegexp != "" ||
		len(r.Method) > 0 || len(r.Header) > 0 || len(r.Cookie) > 0 || len(r.Query) > 0 ||
		r.StripPrefix != "" || r.ReplacePath != "" || r.Redirect != "" || r.Respond != nil || r.Canary != nil ||
		r.RateLimit != ""
}

func validateHTTPRoute(v *validator, rkey string, r *ForwardRoute, usePool func(k, name string)) {
	if len(r.SNI) > 0 {
		v.fail(rkey+".sni", "is for tls listeners; an http route matches host")
	}
	for _, h := range r.Host {
		if msg := checkSNI(h); msg != "" {
			v.fail(rkey+".host", "%q: %s", h, msg)
		}
	}
	paths := 0
	for _, p := range []string{r.Path, r.PathPrefix, r.PathRegexp} {
		if p != "" {
			paths++
		}
	}
	if paths > 1 {
		v.fail(rkey, "path, path_prefix and path_regexp exclude one another: set one")
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		v.fail(rkey+".path", "%q must start with /", r.Path)
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		v.fail(rkey+".path_prefix", "%q must start with /", r.PathPrefix)
	}
	var re *regexp.Regexp
	if r.PathRegexp != "" {
		var err error
		if re, err = regexp.Compile(r.PathRegexp); err != nil {
			v.fail(rkey+".path_regexp", "%v", err)
		}
	}
	for _, m := range r.Method {
		if m == "" || strings.ContainsAny(m, " \t/:") {
			v.fail(rkey+".method", "%q is not a method", m)
		}
	}
	for name := range r.Header {
		if !validHeaderName(name) {
			v.fail(rkey+".header", "%q is not a header name", name)
		}
	}
	for name := range r.Cookie {
		if name == "" || strings.ContainsAny(name, " ;=,") {
			v.fail(rkey+".cookie", "%q is not a cookie name", name)
		}
	}
	actions := 0
	for _, set := range []bool{r.Pool != "", r.Redirect != "", r.Respond != nil} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		v.fail(rkey, "a route does one thing: set exactly one of pool, redirect and respond")
	}
	if r.Pool != "" {
		usePool(rkey+".pool", r.Pool)
	}
	if r.Pool == "" && (r.StripPrefix != "" || r.ReplacePath != "" || r.Canary != nil) {
		v.fail(rkey, "strip_prefix, replace_path and canary change what is sent to a pool: they need pool")
	}
	if r.StripPrefix != "" && !strings.HasPrefix(r.StripPrefix, "/") {
		v.fail(rkey+".strip_prefix", "%q must start with /", r.StripPrefix)
	}
	if r.ReplacePath != "" {
		if r.StripPrefix != "" {
			v.fail(rkey+".replace_path", "set strip_prefix or replace_path, not both")
		}
		if !strings.HasPrefix(r.ReplacePath, "/") && !(re != nil && strings.HasPrefix(r.ReplacePath, "$")) {
			v.fail(rkey+".replace_path", "%q must start with /", r.ReplacePath)
		}
	}
	if r.Redirect != "" {
		if !slices.Contains(redirectCodes, r.RedirectCode) {
			v.fail(rkey+".redirect_code", "must be 301, 302, 303, 307 or 308, got %d", r.RedirectCode)
		}
		if !strings.Contains(r.Redirect, "://") && !strings.HasPrefix(r.Redirect, "/") {
			v.fail(rkey+".redirect", "%q: a URL (https://{host}{uri}) or a path (/new{uri})", r.Redirect)
		}
	} else if r.RedirectCode != 0 {
		v.fail(rkey+".redirect_code", "needs redirect")
	}
	if rs := r.Respond; rs != nil && (rs.Status < 200 || rs.Status > 599) {
		v.fail(rkey+".respond", "status must be 200 to 599, got %d", rs.Status)
	}
	if c := r.Canary; c != nil {
		switch {
		case c.Pool == "":
			v.fail(rkey+".canary", "pool missing: the pool that takes the canary's share")
		case c.Pool == r.Pool:
			v.fail(rkey+".canary", "pool %q is the route's own pool", c.Pool)
		default:
			usePool(rkey+".canary", c.Pool)
		}
		if c.Percent < 0 || c.Percent > 100 {
			v.fail(rkey+".canary", "percent must be 0 to 100, got %d", c.Percent)
		}
		if g := c.Guard; g != nil {
			if g.Window.Duration != 0 && g.Window.Duration < 10*time.Millisecond {
				v.fail(rkey+".canary.guard.window", "must be at least 10ms, got %s", g.Window)
			}
			if g.Interval.Duration < 0 {
				v.fail(rkey+".canary.guard.interval", "must not be negative, got %s", g.Interval)
			}
			if g.MaxLatencyRatio != nil && *g.MaxLatencyRatio >= 0 && *g.MaxLatencyRatio < 1 {
				v.fail(rkey+".canary.guard.max_latency_ratio", "must be at least 1 (or negative: not judged), got %g", *g.MaxLatencyRatio)
			}
			if g.MinRequests < 0 {
				v.fail(rkey+".canary.guard.min_requests", "must not be negative, got %d", g.MinRequests)
			}
		}
	}
}

// validHeaderName reports whether s is an HTTP header field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return true
}

// ParsePrefixOrAddr parses a CIDR prefix, or an IP address as the prefix
// of that address alone. IPv4-mapped IPv6 is unmapped.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (f *Forward) validatePool(v *validator, key string, p *ForwardPool) {
	if !slices.Contains(Balancers, p.Balance) {
		v.fail(key+".balance", "must be one of %s, got %q", strings.Join(Balancers, ", "), p.Balance)
	}
	if !slices.Contains(hashKeys, p.HashKey) {
		v.fail(key+".hash_key", "must be one of %s, got %q", strings.Join(hashKeys, ", "), p.HashKey)
	}
	if !slices.Contains(allUnhealthy, p.AllUnhealthy) {
		v.fail(key+".all_unhealthy", "must be refuse or panic, got %q", p.AllUnhealthy)
	}
	if !slices.Contains(initialStates, p.InitialState) {
		v.fail(key+".initial_state", "must be up, down or unknown, got %q", p.InitialState)
	}
	if !slices.Contains(proxyVersions, p.ProxyProtocol) {
		v.fail(key+".proxy_protocol", "must be v1, v2 or off, got %q", p.ProxyProtocol)
	}
	if p.MinHealthy < 1 || (len(p.Backends) > 0 && p.MinHealthy > len(p.Backends)) {
		v.fail(key+".min_healthy", "must be 1 to the number of backends (%d), got %d", len(p.Backends), p.MinHealthy)
	}
	if p.ConnectAttempts < 1 || p.ConnectAttempts > maxConnectAttempts {
		v.fail(key+".connect_attempts", "must be 1 to %d, got %d", maxConnectAttempts, p.ConnectAttempts)
	}
	if p.ConnectTimeout.Duration <= 0 {
		v.fail(key+".connect_timeout", "must be positive, got %s", p.ConnectTimeout)
	}
	if p.DrainTimeout.Duration < 0 {
		v.fail(key+".drain_timeout", "must not be negative, got %s", p.DrainTimeout)
	}
	if p.SlowStart.Duration < 0 {
		v.fail(key+".slow_start", "must not be negative, got %s", p.SlowStart)
	}
	if p.MaxConnections < 0 {
		v.fail(key+".max_connections", "must not be negative (0 is no limit), got %d", p.MaxConnections)
	}
	o := p.Outlier
	if *o.ConsecutiveFailures < 0 {
		v.fail(key+".outlier.consecutive_failures", "must not be negative (0 disables), got %d", *o.ConsecutiveFailures)
	}
	if o.BaseEjectionTime.Duration <= 0 {
		v.fail(key+".outlier.base_ejection_time", "must be positive, got %s", o.BaseEjectionTime)
	}
	if o.MaxEjectionTime.Duration < o.BaseEjectionTime.Duration {
		v.fail(key+".outlier.max_ejection_time", "must be at least base_ejection_time (%s), got %s", o.BaseEjectionTime, o.MaxEjectionTime)
	}
	if *o.MaxEjectionPercent < 0 || *o.MaxEjectionPercent > 100 {
		v.fail(key+".outlier.max_ejection_percent", "must be 0 to 100, got %d", *o.MaxEjectionPercent)
	}
	f.validatePoolHTTP(v, key, p)
	var c Config // validateCheck reads nothing of the GSLB configuration
	c.validateCheck(v, key+".check", p.Check)
	if p.Check.Port < 0 || p.Check.Port > 65535 {
		v.fail(key+".check.port", "must be 1 to 65535 (or absent: the backend's port), got %d", p.Check.Port)
	}
	if len(p.Backends) == 0 {
		v.fail(key, "pool %q has no [[pool.backend]]", p.Name)
	}
	if len(p.Backends) > maxBackendsPerPool {
		v.fail(key, "pool %q has %d backends; at most %d", p.Name, len(p.Backends), maxBackendsPerPool)
	}
	seen := map[string]bool{}
	for j, b := range p.Backends {
		bkey := fmt.Sprintf("%s.backend[%d]", key, j)
		if msg := checkHostPort(b.Address); msg != "" {
			v.fail(bkey+".address", "%s", msg)
		}
		if seen[b.Address] {
			v.fail(bkey+".address", "%s is listed twice in pool %q", b.Address, p.Name)
		}
		seen[b.Address] = true
		if *b.Weight < 1 || *b.Weight > maxBackendWeight {
			v.fail(bkey+".weight", "must be 1 to %d, got %d (drain = true takes a backend out)", maxBackendWeight, *b.Weight)
		}
		if *b.MaxConnections < 0 {
			v.fail(bkey+".max_connections", "must not be negative (0 is no limit), got %d", *b.MaxConnections)
		}
		if b.CheckAddress != "" {
			if msg := checkHostPort(b.CheckAddress); msg != "" {
				v.fail(bkey+".check_address", "%s", msg)
			}
		}
	}
}

// validatePoolHTTP checks [pool.http], [pool.sticky] and [pool.breaker].
func (f *Forward) validatePoolHTTP(v *validator, key string, p *ForwardPool) {
	h := p.HTTP
	if !slices.Contains(backendSchemes, h.Scheme) {
		v.fail(key+".http.scheme", "must be http or https, got %q", h.Scheme)
	}
	if h.Scheme != "https" {
		for k, set := range map[string]bool{"server_name": h.ServerName != "", "ca_file": h.CAFile != "", "http2": h.HTTP2} {
			if set {
				v.fail(key+".http."+k, "is for scheme = \"https\"")
			}
		}
	}
	if h.Timeout.Duration <= 0 {
		v.fail(key+".http.timeout", "must be positive, got %s", h.Timeout)
	}
	if h.IdleTimeout.Duration <= 0 {
		v.fail(key+".http.idle_timeout", "must be positive, got %s", h.IdleTimeout)
	}
	if h.MaxIdle < 1 {
		v.fail(key+".http.max_idle", "must be at least 1, got %d", h.MaxIdle)
	}
	if *h.Retries < 0 || *h.Retries > maxRetries {
		v.fail(key+".http.retries", "must be 0 to %d, got %d", maxRetries, *h.Retries)
	}
	for _, code := range h.RetryStatuses {
		if code < 400 || code > 599 {
			v.fail(key+".http.retry_statuses", "%d is not an error status (400 to 599)", code)
		}
	}
	if *h.RetryBudget < 0 || *h.RetryBudget > 1 {
		v.fail(key+".http.retry_budget", "must be 0 to 1 (a share of requests), got %g", *h.RetryBudget)
	}
	if *h.RetryBudgetMin < 0 {
		v.fail(key+".http.retry_budget_min", "must not be negative, got %d", *h.RetryBudgetMin)
	}
	if *h.RetryBuffer < 0 {
		v.fail(key+".http.retry_buffer", "must not be negative, got %d", *h.RetryBuffer)
	}
	st := p.Sticky
	if !slices.Contains(stickyModes, st.Mode) {
		v.fail(key+".sticky.mode", "must be cookie, source_ip or header, got %q", st.Mode)
	}
	switch st.Mode {
	case "cookie":
		if st.KeyFile == "" {
			v.fail(key+".sticky.key_file", "missing: the key that signs the cookie, so that clients cannot choose their backend")
		}
		if st.Cookie == "" || strings.ContainsAny(st.Cookie, " ;=,") {
			v.fail(key+".sticky.cookie", "%q is not a cookie name", st.Cookie)
		}
		if st.MaxAge.Duration < 0 {
			v.fail(key+".sticky.max_age", "must not be negative (0 is a session cookie), got %s", st.MaxAge)
		}
	case "header":
		if !validHeaderName(st.Header) {
			v.fail(key+".sticky.header", "%q is not a header name", st.Header)
		}
	}
	br := p.Breaker
	if br.ConsecutiveFailures < 0 {
		v.fail(key+".breaker.consecutive_failures", "must not be negative (0: not by count), got %d", br.ConsecutiveFailures)
	}
	if br.FailureRatio < 0 || br.FailureRatio > 1 {
		v.fail(key+".breaker.failure_ratio", "must be 0 to 1, got %g", br.FailureRatio)
	}
	if br.MinRequests < 0 {
		v.fail(key+".breaker.min_requests", "must not be negative, got %d", br.MinRequests)
	}
	if br.Interval.Duration <= 0 || br.OpenTime.Duration <= 0 {
		v.fail(key+".breaker", "interval and open_time must be positive, got %s and %s", br.Interval, br.OpenTime)
	}
	if br.Probes < 1 || br.Probes > 1000 {
		v.fail(key+".breaker.probes", "must be 1 to 1000, got %d", br.Probes)
	}
}

// checkListen returns why addr is not a listen address, or "".
// policyName reports whether s can name a rate limit policy: a token
// the RateLimit headers carry as it is (package ratelimit holds its
// names to the same rule).
func policyName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not ip:port (write IPv6 as \"[::1]:443\")", addr)
	case host != "" && net.ParseIP(host) == nil:
		return fmt.Sprintf("%q: host must be an IP address, not a name", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 0 to 65535", addr)
	}
	return ""
}

// checkHostPort returns why addr is not a host:port to connect to, or "".
func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Sprintf("%q is not host:port (write IPv6 as \"[2001:db8::1]:80\")", addr)
	}
	if _, err := netip.ParseAddr(host); err != nil && strings.ContainsAny(host, " /") {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 1 to 65535", addr)
	}
	return ""
}

// checkSNI returns why name cannot be matched against a ClientHello's
// server name, or "".
func checkSNI(name string) string {
	rest, wild := strings.CutPrefix(name, "*.")
	switch {
	case name == "":
		return "empty name"
	case strings.Contains(rest, "*"):
		return "a wildcard stands for one whole label, leftmost: \"*.example.com\""
	case wild && !strings.Contains(rest, "."):
		return "a wildcard needs at least two labels after it"
	case strings.ContainsAny(rest, " /:[]"):
		return "not a host name"
	}
	return ""
}

// applyCheckDefaults gives a pool's [pool.check] the defaults of a GSLB
// pool's [record.pool.check], but for the port: a forwarder checks its
// backend's own port unless told otherwise, whatever the type.
func applyCheckDefaults(ck *Check) {
	ck.Type = strings.ToLower(cmp.Or(ck.Type, "tcp"))
	if ck.Interval.Duration == 0 {
		ck.Interval.Duration = DefaultCheckInterval
	}
	if ck.Timeout.Duration == 0 {
		ck.Timeout.Duration = min(DefaultCheckTimeout, ck.Interval.Duration)
	}
	ck.Rise = cmp.Or(ck.Rise, DefaultCheckRise)
	ck.Fall = cmp.Or(ck.Fall, DefaultCheckFall)
	switch ck.Type {
	case "http", "https":
		ck.Method = strings.ToUpper(cmp.Or(ck.Method, DefaultCheckMethod))
		ck.Path = cmp.Or(ck.Path, "/")
	case "dns":
		ck.QueryType = strings.ToUpper(cmp.Or(ck.QueryType, DefaultDNSQueryType))
		ck.Rcode = strings.ToUpper(cmp.Or(ck.Rcode, DefaultDNSRcode))
	}
}

// CheckSpec returns the active check of backend b of pool p, with files
// resolved against the configuration's folder; false when the pool's
// check is type none. The spec's Target is left for the caller to name.
func (f *Forward) CheckSpec(p *ForwardPool, b *ForwardBackend) (CheckSpec, bool) {
	if p.Check.Type == "none" {
		return CheckSpec{}, false
	}
	spec := (&Config{Path: f.Path}).checkSpec(p.Check)
	spec.Addr = b.Address
	switch {
	case b.CheckAddress != "":
		spec.Addr = b.CheckAddress
	case p.Check.Port != 0:
		host, _, _ := net.SplitHostPort(b.Address) // validated
		spec.Addr = net.JoinHostPort(host, strconv.Itoa(p.Check.Port))
	}
	return spec, true
}

// has reports whether path itself is written in the file, not only its
// table: for keys whose zero value is meaningful.
func (k keyIndex) has(path string) bool {
	return slices.ContainsFunc(k, func(at keyAt) bool { return at.path == path })
}

func ptr[T any](v T) *T { return &v }

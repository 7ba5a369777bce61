package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/meridian-gslb/meridian/internal/tomlfile"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/probes/checkconfig"
)

// Defaults of the forwarder's configuration (meridian forward), each named
// so the reference in README.md can point at it.
const (
	DefaultLogLevel            = "info"           // log.level, as serve's
	DefaultLogFormat           = "text"           // log.format, as serve's
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
	DefaultBodyTimeout         = 60 * time.Second // listener.body_timeout (http, https): nginx's client_body_timeout
	DefaultMinBodyRate         = 500              // listener.min_body_rate (http, https), bytes a second: Apache mod_reqtimeout's MinRate
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

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration = tomlfile.Duration

// Check is a pool's active health check, [pool.check]: the check of a
// GSLB pool, but for the port, which is the backend's own unless set.
type Check = checkconfig.Check

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
	Cluster    ForwardCluster     `toml:"cluster"` // load reports to the DNS nodes

	decoded *decoded // the keys written, and their lines
}

// ForwardAccessLog configures the JSON access log of the http and https
// listeners: one line per request with the route that matched and the
// backend that answered.
type ForwardAccessLog struct {
	Path string `toml:"path"` // a file (appended to), "stdout" or "stderr"; "" logs nothing
	// Sample is the share of requests logged, 0 to 1.
	Sample *float64 `toml:"sample"`
}

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
func (f *Forward) LineOf(key string) int {
	if f.decoded == nil {
		return 0
	}
	return f.decoded.lines.Line(key)
}

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

// ParseForward decodes src as if read from path, then gives each absent
// key its default and validates the whole.
func ParseForward(path string, src []byte) (*Forward, error) {
	f := &Forward{
		Path:  path,
		Log:   ForwardLog{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Admin: ForwardAdmin{Listen: DefaultForwardAdminListen},
	}
	d, errs, err := decodeStrict(path, src, f)
	if err != nil {
		return nil, err
	}
	f.decoded = d
	f.setDefaults()
	v := validator{file: path, d: d}
	f.validate(&v)
	errs = append(errs, v.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// CheckSpec returns the active check of backend b of pool p, with files
// resolved against the configuration's folder; false when the pool's
// check is type none. The spec's Target is left for the caller to name.
func (f *Forward) CheckSpec(p *ForwardPool, b *ForwardBackend) (probes.CheckSpec, bool) {
	if p.Check.Type == "none" {
		return probes.CheckSpec{}, false
	}
	spec := p.Check.Spec(f.ResolvePath)
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

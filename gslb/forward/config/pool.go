package config

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

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

// setDefaults gives the pool's absent keys, and its tables', their
// defaults. key is the pool's path ("pool[0]"), for the keys whose zero
// value means something of its own.
func (p *ForwardPool) setDefaults(d *decoded, key string) {
	p.Balance = strings.ToLower(cmp.Or(p.Balance, DefaultBalance))
	p.HashKey = strings.ToLower(cmp.Or(p.HashKey, DefaultHashKey))
	p.AllUnhealthy = strings.ToLower(cmp.Or(p.AllUnhealthy, DefaultAllUnhealthy))
	p.InitialState = strings.ToLower(cmp.Or(p.InitialState, DefaultInitialState))
	p.ProxyProtocol = strings.ToLower(p.ProxyProtocol)
	if p.ProxyProtocol == "off" {
		p.ProxyProtocol = ""
	}
	p.MinHealthy = cmp.Or(p.MinHealthy, DefaultMinHealthy)
	p.ConnectAttempts = cmp.Or(p.ConnectAttempts, DefaultConnectAttempts)
	setDuration(&p.ConnectTimeout, DefaultConnectTimeout)
	// drain_timeout = "0s" is meaningful (close at once), so only an
	// absent key takes the default.
	if !d.has(key + ".drain_timeout") {
		p.DrainTimeout.Duration = DefaultDrainTimeout
	}
	p.Outlier.setDefaults()
	p.Check.SetDefaults()
	p.HTTP.setDefaults()
	p.Sticky.setDefaults(p.Name)
	p.Breaker.setDefaults()
	for j := range p.Backends {
		p.Backends[j].setDefaults(p.MaxConnections)
	}
}

func (p *ForwardPool) validate(v *validator, key string) {
	p.validateChoices(v, key)
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
	p.Outlier.validate(v, key+".outlier")
	p.HTTP.validate(v, key+".http")
	p.Sticky.validate(v, key+".sticky")
	p.Breaker.validate(v, key+".breaker")
	for _, pr := range p.Check.Validate() {
		v.fail(strings.TrimSuffix(key+".check."+pr.Key, "."), "%s", pr.Msg)
	}
	if p.Check.Port < 0 || p.Check.Port > 65535 {
		v.fail(key+".check.port", "must be 1 to 65535 (or absent: the backend's port), got %d", p.Check.Port)
	}
	p.validateBackends(v, key)
}

// validateChoices checks the pool's enumerated keys.
func (p *ForwardPool) validateChoices(v *validator, key string) {
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
}

func (p *ForwardPool) validateBackends(v *validator, key string) {
	if len(p.Backends) == 0 {
		v.fail(key, "pool %q has no [[pool.backend]]", p.Name)
	}
	if len(p.Backends) > maxBackendsPerPool {
		v.fail(key, "pool %q has %d backends; at most %d", p.Name, len(p.Backends), maxBackendsPerPool)
	}
	seen := map[string]bool{}
	for j := range p.Backends {
		b := &p.Backends[j]
		bkey := fmt.Sprintf("%s.backend[%d]", key, j)
		if seen[b.Address] {
			v.fail(bkey+".address", "%s is listed twice in pool %q", b.Address, p.Name)
		}
		seen[b.Address] = true
		b.validate(v, bkey)
	}
}

func (b *ForwardBackend) setDefaults(poolMaxConns int) {
	if b.Weight == nil {
		b.Weight = ptr(DefaultBackendWeight)
	}
	if b.MaxConnections == nil {
		b.MaxConnections = ptr(poolMaxConns)
	}
}

func (b *ForwardBackend) validate(v *validator, key string) {
	if msg := checkHostPort(b.Address); msg != "" {
		v.fail(key+".address", "%s", msg)
	}
	if *b.Weight < 1 || *b.Weight > maxBackendWeight {
		v.fail(key+".weight", "must be 1 to %d, got %d (drain = true takes a backend out)", maxBackendWeight, *b.Weight)
	}
	if *b.MaxConnections < 0 {
		v.fail(key+".max_connections", "must not be negative (0 is no limit), got %d", *b.MaxConnections)
	}
	if b.CheckAddress != "" {
		if msg := checkHostPort(b.CheckAddress); msg != "" {
			v.fail(key+".check_address", "%s", msg)
		}
	}
}

func (o *Outlier) setDefaults() {
	if o.ConsecutiveFailures == nil {
		o.ConsecutiveFailures = ptr(DefaultConsecutiveFailures)
	}
	if o.MaxEjectionPercent == nil {
		o.MaxEjectionPercent = ptr(DefaultMaxEjectionPercent)
	}
	setDuration(&o.BaseEjectionTime, DefaultBaseEjectionTime)
	setDuration(&o.MaxEjectionTime, max(DefaultMaxEjectionTime, o.BaseEjectionTime.Duration))
}

func (o *Outlier) validate(v *validator, key string) {
	if *o.ConsecutiveFailures < 0 {
		v.fail(key+".consecutive_failures", "must not be negative (0 disables), got %d", *o.ConsecutiveFailures)
	}
	if o.BaseEjectionTime.Duration <= 0 {
		v.fail(key+".base_ejection_time", "must be positive, got %s", o.BaseEjectionTime)
	}
	if o.MaxEjectionTime.Duration < o.BaseEjectionTime.Duration {
		v.fail(key+".max_ejection_time", "must be at least base_ejection_time (%s), got %s", o.BaseEjectionTime, o.MaxEjectionTime)
	}
	if *o.MaxEjectionPercent < 0 || *o.MaxEjectionPercent > 100 {
		v.fail(key+".max_ejection_percent", "must be 0 to 100, got %d", *o.MaxEjectionPercent)
	}
}

func (h *ForwardPoolHTTP) setDefaults() {
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
}

// validate checks [pool.http]; key is its path ("pool[0].http").
func (h *ForwardPoolHTTP) validate(v *validator, key string) {
	if !slices.Contains(backendSchemes, h.Scheme) {
		v.fail(key+".scheme", "must be http or https, got %q", h.Scheme)
	}
	if h.Scheme != "https" {
		for k, set := range map[string]bool{"server_name": h.ServerName != "", "ca_file": h.CAFile != "", "http2": h.HTTP2} {
			if set {
				v.fail(key+"."+k, "is for scheme = \"https\"")
			}
		}
	}
	if h.Timeout.Duration <= 0 {
		v.fail(key+".timeout", "must be positive, got %s", h.Timeout)
	}
	if h.IdleTimeout.Duration <= 0 {
		v.fail(key+".idle_timeout", "must be positive, got %s", h.IdleTimeout)
	}
	if h.MaxIdle < 1 {
		v.fail(key+".max_idle", "must be at least 1, got %d", h.MaxIdle)
	}
	h.validateRetries(v, key)
}

func (h *ForwardPoolHTTP) validateRetries(v *validator, key string) {
	if *h.Retries < 0 || *h.Retries > maxRetries {
		v.fail(key+".retries", "must be 0 to %d, got %d", maxRetries, *h.Retries)
	}
	for _, code := range h.RetryStatuses {
		if code < 400 || code > 599 {
			v.fail(key+".retry_statuses", "%d is not an error status (400 to 599)", code)
		}
	}
	if *h.RetryBudget < 0 || *h.RetryBudget > 1 {
		v.fail(key+".retry_budget", "must be 0 to 1 (a share of requests), got %g", *h.RetryBudget)
	}
	if *h.RetryBudgetMin < 0 {
		v.fail(key+".retry_budget_min", "must not be negative, got %d", *h.RetryBudgetMin)
	}
	if *h.RetryBuffer < 0 {
		v.fail(key+".retry_buffer", "must not be negative, got %d", *h.RetryBuffer)
	}
}

// setDefaults names the cookie after the pool unless it is named.
func (st *ForwardSticky) setDefaults(pool string) {
	st.Mode = strings.ToLower(st.Mode)
	if st.Mode == "cookie" {
		st.Cookie = cmp.Or(st.Cookie, DefaultStickyCookiePrefix+pool)
	}
	st.Header = http.CanonicalHeaderKey(st.Header)
}

func (st *ForwardSticky) validate(v *validator, key string) {
	if !slices.Contains(stickyModes, st.Mode) {
		v.fail(key+".mode", "must be cookie, source_ip or header, got %q", st.Mode)
	}
	switch st.Mode {
	case "cookie":
		if st.KeyFile == "" {
			v.fail(key+".key_file", "missing: the key that signs the cookie, so that clients cannot choose their backend")
		}
		if st.Cookie == "" || strings.ContainsAny(st.Cookie, " ;=,") {
			v.fail(key+".cookie", "%q is not a cookie name", st.Cookie)
		}
		if st.MaxAge.Duration < 0 {
			v.fail(key+".max_age", "must not be negative (0 is a session cookie), got %s", st.MaxAge)
		}
	case "header":
		if !validHeaderName(st.Header) {
			v.fail(key+".header", "%q is not a header name", st.Header)
		}
	}
}

func (br *ForwardBreaker) setDefaults() {
	setDuration(&br.Interval, DefaultBreakerInterval)
	setDuration(&br.OpenTime, DefaultBreakerOpenTime)
	br.Probes = cmp.Or(br.Probes, DefaultBreakerProbes)
}

func (br *ForwardBreaker) validate(v *validator, key string) {
	if br.ConsecutiveFailures < 0 {
		v.fail(key+".consecutive_failures", "must not be negative (0: not by count), got %d", br.ConsecutiveFailures)
	}
	if br.FailureRatio < 0 || br.FailureRatio > 1 {
		v.fail(key+".failure_ratio", "must be 0 to 1, got %g", br.FailureRatio)
	}
	if br.MinRequests < 0 {
		v.fail(key+".min_requests", "must not be negative, got %d", br.MinRequests)
	}
	if br.Interval.Duration <= 0 || br.OpenTime.Duration <= 0 {
		v.fail(key, "interval and open_time must be positive, got %s and %s", br.Interval, br.OpenTime)
	}
	if br.Probes < 1 || br.Probes > 1000 {
		v.fail(key+".probes", "must be 1 to 1000, got %d", br.Probes)
	}
}

// setDuration gives d its default when it is absent (or zero, which for
// these keys is not a value of its own).
func setDuration(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}

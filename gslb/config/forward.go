package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the forwarder's configuration (meridian forward), each named
// so the reference in README.md can point at it.
const (
	DefaultForwardAdminListen   = "127.0.0.1:8054" // admin.listen: API, capacity endpoint and metrics
	DefaultBalance              = "round_robin"    // pool.balance
	DefaultHashKey              = "source_ip"      // pool.hash_key, for the hashing balancers
	DefaultInitialState         = "up"             // pool.initial_state of a backend before its first check
	DefaultAllUnhealthy         = "refuse"         // pool.all_unhealthy
	DefaultMinHealthy           = 1                // pool.min_healthy
	DefaultConnectTimeout       = 5 * time.Second  // pool.connect_timeout
	DefaultConnectAttempts      = 3                // pool.connect_attempts, each on another backend
	DefaultDrainTimeout         = 30 * time.Second // pool.drain_timeout
	DefaultBackendWeight        = 1                // pool.backend.weight
	DefaultConsecutiveFailures  = 5                // pool.outlier.consecutive_failures
	DefaultBaseEjectionTime     = 30 * time.Second // pool.outlier.base_ejection_time
	DefaultMaxEjectionTime      = 5 * time.Minute  // pool.outlier.max_ejection_time
	DefaultMaxEjectionPercent   = 10               // pool.outlier.max_ejection_percent (one backend is always allowed)
	DefaultListenerMaxConns     = 10000            // listener.max_connections (tcp, tls)
	DefaultTCPIdle              = 5 * time.Minute  // listener.idle_timeout for tcp and tls
	DefaultUDPIdle              = 30 * time.Second // listener.idle_timeout for udp flows
	DefaultMaxFlows             = 10000            // listener.max_flows (udp)
	DefaultHandshakeTimeout     = 5 * time.Second  // listener.handshake_timeout: PROXY header and ClientHello
	maxBackendWeight            = 1_000_000
	maxBackendsPerPool          = 10_000
	maxConnectAttempts          = 10
	forwardCheckIntervalMinimum = 10 * time.Millisecond
)

// Choices of the forwarder's enumerated keys.
var (
	Balancers        = []string{"round_robin", "weighted_round_robin", "least_conn", "p2c", "source_hash", "maglev", "rendezvous"}
	hashingBalancers = []string{"source_hash", "maglev", "rendezvous"}
	hashKeys         = []string{"source_ip", "source_addr", "sni"}
	initialStates    = []string{"up", "down", "unknown"}
	allUnhealthy     = []string{"refuse", "panic"}
	proxyVersions    = []string{"", "off", "v1", "v2"}
	listenerProtos   = []string{"tcp", "tls", "udp"}
)

// Forward is the whole of a forwarder's TOML file (meridian forward).
type Forward struct {
	Path      string            `toml:"-"` // the file it was read from
	Log       ForwardLog        `toml:"log"`
	Admin     ForwardAdmin      `toml:"admin"`
	Health    ForwardHealth     `toml:"health"`
	Pools     []ForwardPool     `toml:"pool"`
	Listeners []ForwardListener `toml:"listener"`

	lines keyIndex
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
	Backends        []ForwardBackend `toml:"backend"`
}

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
	Routes              []ForwardRoute `toml:"route"`                 // tls: SNI routes
}

// ForwardRoute sends TLS connections whose SNI matches one of its names to
// a pool. A name is exact ("api.example.com") or a wildcard for one label
// ("*.example.com").
type ForwardRoute struct {
	SNI  []string `toml:"sni"`
	Pool string   `toml:"pool"`
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
		if l.Protocol == "udp" {
			setDuration(&l.IdleTimeout, DefaultUDPIdle)
		} else {
			setDuration(&l.IdleTimeout, DefaultTCPIdle)
		}
		setDuration(&l.HandshakeTimeout, DefaultHandshakeTimeout)
		for j := range l.Routes {
			for k, name := range l.Routes[j].SNI {
				l.Routes[j].SNI[k] = strings.ToLower(strings.TrimSuffix(name, "."))
			}
		}
	}
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
			case l.Protocol != "tls" && p.HashKey == "sni" && slices.Contains(hashingBalancers, p.Balance):
				v.fail(k, "pool %q hashes on sni, which only a tls listener reads", name)
			case l.Protocol == "udp" && p.ProxyProtocol != "":
				v.fail(k, "pool %q sends a PROXY header, which the forwarder sends over TCP only", name)
			}
		}
		if l.Pool != "" {
			usePool(key+".pool", l.Pool)
		} else if l.Protocol != "tls" || len(l.Routes) == 0 {
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
		if l.Protocol != "tls" && len(l.Routes) > 0 {
			v.fail(key+".route", "SNI routes need protocol = \"tls\"")
		}
		seen := map[string]bool{}
		for j, r := range l.Routes {
			rkey := fmt.Sprintf("%s.route[%d]", key, j)
			usePool(rkey+".pool", r.Pool)
			if len(r.SNI) == 0 {
				v.fail(rkey+".sni", "missing: the server names this route matches")
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

// checkListen returns why addr is not a listen address, or "".
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

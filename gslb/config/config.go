package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/cookie"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/gslb/whatif"
	"github.com/meridian-gslb/meridian/internal/tomlfile"
	"github.com/meridian-gslb/meridian/zones/dnssec"
)

// Defaults, each named so the reference in README.md can point at it.
const (
	DefaultListen            = "127.0.0.1:53" // server.listen when absent
	DefaultEDNSUDPSize       = 1232           // server.edns_udp_size, the DNS Flag Day 2020 value
	DefaultTCPIdleTimeout    = 10 * time.Second
	DefaultTCPMaxConnections = 1024            // server.tcp_max_connections, per listen address
	DefaultTCPMaxQueries     = 1000            // server.tcp_max_queries, per connection
	DefaultTCPMaxPerClient   = 32              // server.tcp_max_per_client, per client address and listen address
	DefaultTCPMaxPerPrefix   = 128             // server.tcp_max_per_prefix, per client /24 or /56
	DefaultTCPMessageTimeout = 2 * time.Second // server.tcp_message_timeout, for a message to arrive whole
	DefaultShutdownTimeout   = 5 * time.Second
	DefaultZoneTTL           = 3600 // zone.default_ttl for records that name no TTL
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "text"
	DefaultAdminListen       = "127.0.0.1:8053" // admin.listen
)

// The values of server.udp_loop; UDPLoopBlocking is the default.
const (
	UDPLoopBlocking = "blocking"
	UDPLoopPoller   = "poller"
)

// Admin configures the admin HTTP API.
type Admin struct {
	Listen    string `toml:"listen"`     // host:port; "off" disables the API
	TokenFile string `toml:"token_file"` // bearer token for changes; without it changes are refused
	OpenReads *bool  `toml:"open_reads"` // reads without the token; default true
	StateFile string `toml:"state_file"` // where drains persist across restarts; "" keeps them in memory
}

// ReadsOpen reports the effective OpenReads.
func (a Admin) ReadsOpen() bool { return a.OpenReads == nil || *a.OpenReads }

// Config is the whole of a meridian.toml.
type Config struct {
	// Path is the file the configuration was read from ("" when embedded);
	// zone files are resolved relative to its folder.
	Path string `toml:"-"`
	// FS, when set, holds the zone files instead of the operating system
	// (the quickstart embedded in the binary).
	FS     fs.FS  `toml:"-"`
	Server Server `toml:"server"`
	Log    Log    `toml:"log"`
	Zones  []Zone `toml:"zone"`

	// GSLB: where clients are, the regions, and the dynamic records.
	Admin   Admin    `toml:"admin"`
	Health  Health   `toml:"health"`
	Geo     Geo      `toml:"geo"`
	Regions []Region `toml:"region"`
	Records []Record `toml:"record"`
	Cluster Cluster  `toml:"cluster"`
	// Guards are the rules operator changes are held to (gslb/whatif
	// owns the table and checks it on its own; validateGuards checks the
	// names it gives).
	Guards []whatif.Guard `toml:"guard"`

	// Transfer is [transfer]: TSIG keys and the IXFR history of zone
	// transfers; each zone's [zone.transfer] says who may transfer it.
	Transfer xfr.Settings `toml:"transfer"`

	lines tomlfile.Index // where each key is written, for errors found after decoding
	// signers of the signed zones by origin, made by LoadZones
	signers map[string]*dnssec.Signer
}

// LineOf returns the line key ("geo.network[3]") is written on, or its
// table's, for errors found after decoding.
func (c *Config) LineOf(key string) int { return c.lines.Line(key) }

// readCookieSecrets reads server.cookies.secret_file, as validation
// reads the cluster's key file: a reload re-reads it, which is how a
// secret is rolled.
func (c *Config) readCookieSecrets(v *validator) {
	ck := &c.Server.Cookies
	if ck.SecretFile == "" {
		return
	}
	var b []byte
	var err error
	if c.FS != nil {
		b, err = fs.ReadFile(c.FS, path.Join(path.Dir(c.Path), ck.SecretFile))
	} else {
		b, err = os.ReadFile(c.ResolvePath(ck.SecretFile))
	}
	if err == nil {
		ck.Secrets, err = cookie.ParseSecrets(string(b))
	}
	if err != nil {
		v.fail("server.cookies.secret_file", "%v", err)
	}
}

// ResolvePath resolves a file named in the configuration against the
// configuration file's folder.
func (c *Config) ResolvePath(p string) string {
	if p == "" || c.FS != nil || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// Server configures the DNS listeners and protocol limits.
type Server struct {
	Listen     []string `toml:"listen"`      // host:port, each served over UDP and TCP
	UDPSockets int      `toml:"udp_sockets"` // SO_REUSEPORT sockets per UDP address; 0 = one per CPU
	// UDPLoop is how each UDP socket is read: "blocking" (default), a
	// goroutine waiting in recvmmsg on Linux, or "poller", Go's netpoller
	// (always, off Linux).
	UDPLoop           string   `toml:"udp_loop"`
	EDNSUDPSize       int      `toml:"edns_udp_size"`       // largest UDP answer we send and advertise
	TCPIdleTimeout    Duration `toml:"tcp_idle_timeout"`    // idle time before a TCP connection is closed
	TCPMaxConnections int      `toml:"tcp_max_connections"` // concurrent TCP connections per address
	TCPMaxQueries     int      `toml:"tcp_max_queries"`     // queries per TCP connection before it is closed
	TCPMaxPerClient   int      `toml:"tcp_max_per_client"`  // concurrent TCP connections per client address
	TCPMaxPerPrefix   int      `toml:"tcp_max_per_prefix"`  // concurrent TCP connections per client /24 (IPv4) or /56 (IPv6)
	// TCPMessageTimeout is how long a message may take to arrive whole once
	// its first byte has: a client sending a byte a second is cut.
	TCPMessageTimeout Duration `toml:"tcp_message_timeout"`
	ShutdownTimeout   Duration `toml:"shutdown_timeout"` // grace for in-flight answers on SIGTERM
	Chaos             bool     `toml:"chaos"`            // answer CHAOS TXT id.server, hostname.bind, version.bind
	Identity          string   `toml:"identity"`         // id.server and hostname.bind; default the host name
	Version           string   `toml:"version"`          // version.bind; default "meridian <version>"
	ECS               bool     `toml:"ecs"`              // use EDNS Client Subnet for dynamic records
	ECSMaxPrefix4     int      `toml:"ecs_max_prefix4"`  // longest IPv4 source prefix used
	ECSMaxPrefix6     int      `toml:"ecs_max_prefix6"`  // longest IPv6 source prefix used
	// RRL is [server.rrl]: response rate limiting of UDP answers.
	RRL rrl.Config `toml:"rrl"`
	// Cookies is [server.cookies]: DNS cookies (RFC 7873, RFC 9018).
	Cookies cookie.Config `toml:"cookies"`
	// Dnstap is [server.dnstap]: queries, responses and decisions logged
	// in the dnstap format.
	Dnstap dnstap.Config `toml:"dnstap"`
}

// Log configures structured logging.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
	// QuerySample logs this share (0 to 1) of dynamic answers with the
	// decision behind them; 0, the default, logs none.
	QuerySample float64 `toml:"query_sample"`
}

// Zone is one authoritative zone: a master file, inline records, or both.
type Zone struct {
	Name       string   `toml:"name"`
	File       string   `toml:"file"`        // RFC 1035 master file, relative to the config file
	DefaultTTL *uint32  `toml:"default_ttl"` // TTL for records that give none
	Records    []string `toml:"records"`     // master-file lines, names relative to the zone
	// IncludeRoot is the folder, relative to the config file, that the
	// file's $INCLUDEs may read (and below it); "" is the file's own
	// folder. It must hold the file.
	IncludeRoot string `toml:"include_root"`
	// Serial is how the SOA serial is set: "file" (as written, the
	// default), "unixtime" or "increment" (a changed zone gets a higher
	// serial at each reload).
	Serial string `toml:"serial"`
	// Transfer is [zone.transfer]: who may transfer the zone, whom to notify.
	Transfer xfr.Config `toml:"transfer"`
	// DNSSEC signs the zone's answers online; nil: unsigned.
	DNSSEC *dnssec.Config `toml:"dnssec"`

	// Line is where the zone's table starts in the config file, for errors
	// found later (while loading its data).
	Line int `toml:"-"`
}

// TTL returns the zone's default TTL.
func (z Zone) TTL() uint32 {
	if z.DefaultTTL == nil {
		return DefaultZoneTTL
	}
	return *z.DefaultTTL
}

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration = tomlfile.Duration

// Load reads, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, src)
}

// LoadFS reads the configuration at path inside fsys; zone files are read
// from fsys too.
func LoadFS(fsys fs.FS, path string) (*Config, error) {
	src, err := fs.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(path, src)
	if err != nil {
		return nil, err
	}
	cfg.FS = fsys
	return cfg, nil
}

// Parse decodes src as if read from path, which errors name and zone files
// are resolved against.
func Parse(path string, src []byte) (*Config, error) {
	cfg := defaults()
	cfg.Path = path
	name := path
	lines, _, errs, err := tomlfile.Decode(name, src, cfg)
	if err != nil {
		return nil, err
	}
	cfg.lines = lines
	for i := range cfg.Zones {
		cfg.Zones[i].Line = lines.Line(fmt.Sprintf("zone[%d]", i))
	}
	cfg.setDefaults()
	v := validator{file: name, lines: lines}
	cfg.validate(&v)
	errs = append(errs, v.errs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func defaults() *Config {
	host, _ := os.Hostname()
	return &Config{
		Server: Server{
			EDNSUDPSize:       DefaultEDNSUDPSize,
			UDPLoop:           UDPLoopBlocking,
			TCPIdleTimeout:    Duration{Duration: DefaultTCPIdleTimeout},
			TCPMaxConnections: DefaultTCPMaxConnections,
			TCPMaxQueries:     DefaultTCPMaxQueries,
			TCPMaxPerClient:   DefaultTCPMaxPerClient,
			TCPMaxPerPrefix:   DefaultTCPMaxPerPrefix,
			TCPMessageTimeout: Duration{Duration: DefaultTCPMessageTimeout},
			ShutdownTimeout:   Duration{Duration: DefaultShutdownTimeout},
			Chaos:             true,
			Identity:          host,
			ECS:               true,
			ECSMaxPrefix4:     DefaultECSMaxPrefix4,
			ECSMaxPrefix6:     DefaultECSMaxPrefix6,
		},
		Log:     Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Admin:   Admin{Listen: DefaultAdminListen},
		Cluster: Cluster{StaleAfter: Duration{Duration: DefaultStaleAfter}, JoinTimeout: Duration{Duration: DefaultJoinTimeout}},
	}
}

// ZonePath resolves a zone's file against the config file's folder.
func (c *Config) ZonePath(z Zone) string {
	if c.FS != nil {
		return path.Join(path.Dir(c.Path), z.File)
	}
	if z.File == "" || filepath.IsAbs(z.File) {
		return z.File
	}
	return filepath.Join(filepath.Dir(c.Path), z.File)
}

// IncludeRoot resolves a zone's include_root against the config file's
// folder, and the zone's file with it (both absolute on the operating
// system, so that either may be written absolute); ok is false when the
// file is not in the root.
func (c *Config) IncludeRoot(z Zone) (root, file string, ok bool) {
	file = c.ZonePath(z)
	if c.FS != nil {
		root = path.Join(path.Dir(c.Path), z.IncludeRoot)
		return root, file, strings.HasPrefix(file, root+"/") || root == "."
	}
	root = z.IncludeRoot
	if !filepath.IsAbs(root) {
		root = filepath.Join(filepath.Dir(c.Path), root)
	}
	var err1, err2 error
	root, err1 = filepath.Abs(root)
	file, err2 = filepath.Abs(file)
	rel, err := filepath.Rel(root, file)
	ok = err1 == nil && err2 == nil && err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	return root, file, ok
}

// Errorf formats an error about key, located in the config file.
func (c *Config) Errorf(line int, key, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", c.Path, line, key, fmt.Sprintf(format, args...))
}

type validator struct {
	file  string
	lines tomlfile.Index
	errs  []error
}

func (v *validator) fail(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s:%d: %s: %s", v.file, v.lines.Line(key), key, fmt.Sprintf(format, args...)))
}

// setDefaults fills what the operator left out, once, after decoding
// and before validate: each table's own defaults.
func (c *Config) setDefaults() {
	c.Server.setDefaults()
	c.Log.setDefaults()
	c.Cluster.setDefaults()
	c.Geo.setDefaults()
	c.Transfer.SetDefaults()
	for i := range c.Records {
		c.Records[i].setDefaults()
	}
	for i := range c.Zones {
		if d := c.Zones[i].DNSSEC; d != nil {
			d.SetDefaults()
		}
	}
}

// validate checks every table, reading the files they name (cookie
// secrets, gossip keys); each problem names its key.
func (c *Config) validate(v *validator) {
	c.Server.validate(v)
	c.Log.validate(v)
	c.Cluster.validate(v, c.ResolvePath)
	c.Admin.validate(v)
	c.validateZones(v)
	for _, p := range c.Server.RRL.Validate() {
		v.fail("server.rrl."+p.Key, "%s", p.Msg)
	}
	for _, p := range c.Server.Dnstap.Validate() {
		v.fail("server.dnstap."+p.Key, "%s", p.Msg)
	}
	c.readCookieSecrets(v)
	c.validateTransfers(v)
	c.validateGSLB(v)
	c.validateGuards(v)
}

func (s *Server) setDefaults() {
	if len(s.Listen) == 0 {
		s.Listen = []string{DefaultListen}
	}
	s.RRL.SetDefaults()
	s.Dnstap.SetDefaults()
}

func (s *Server) validate(v *validator) {
	s.validateListen(v)
	if s.UDPSockets < 0 || s.UDPSockets > 256 {
		v.fail("server.udp_sockets", "must be 0 (one per CPU) to 256, got %d", s.UDPSockets)
	}
	if s.UDPLoop != UDPLoopBlocking && s.UDPLoop != UDPLoopPoller {
		v.fail("server.udp_loop", "must be %q or %q, got %q", UDPLoopBlocking, UDPLoopPoller, s.UDPLoop)
	}
	if s.EDNSUDPSize < 512 || s.EDNSUDPSize > 65535 {
		v.fail("server.edns_udp_size", "must be between 512 and 65535 bytes, got %d", s.EDNSUDPSize)
	}
	if s.TCPIdleTimeout.Duration <= 0 {
		v.fail("server.tcp_idle_timeout", "must be positive, got %s", s.TCPIdleTimeout)
	}
	for _, n := range []struct {
		key string
		val int
	}{
		{"server.tcp_max_connections", s.TCPMaxConnections},
		{"server.tcp_max_queries", s.TCPMaxQueries},
		{"server.tcp_max_per_client", s.TCPMaxPerClient},
		{"server.tcp_max_per_prefix", s.TCPMaxPerPrefix},
	} {
		if n.val < 1 {
			v.fail(n.key, "must be at least 1, got %d", n.val)
		}
	}
	if s.TCPMessageTimeout.Duration < 100*time.Millisecond {
		v.fail("server.tcp_message_timeout", "must be at least 100ms, got %s", s.TCPMessageTimeout)
	}
	if s.ShutdownTimeout.Duration < 0 {
		v.fail("server.shutdown_timeout", "must not be negative, got %s", s.ShutdownTimeout)
	}
}

// validateListen checks server.listen: IP host:port pairs, each once.
func (s *Server) validateListen(v *validator) {
	seen := map[string]bool{}
	for _, addr := range s.Listen {
		host, port, err := net.SplitHostPort(addr)
		switch {
		case err != nil:
			v.fail("server.listen", "%q is not host:port (write IPv6 as \"[::1]:53\")", addr)
			continue
		case host != "" && net.ParseIP(host) == nil:
			v.fail("server.listen", "%q: host must be an IP address, not a name", addr)
		case port == "":
			v.fail("server.listen", "%q: missing port", addr)
		default:
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				v.fail("server.listen", "%q: port must be a number from 0 to 65535", addr)
			}
		}
		if seen[addr] {
			v.fail("server.listen", "%q is listed twice", addr)
		}
		seen[addr] = true
	}
}

// validateECS checks the ECS prefix lengths, which the GSLB policies use.
func (s *Server) validateECS(v *validator) {
	if s.ECSMaxPrefix4 < 0 || s.ECSMaxPrefix4 > 32 {
		v.fail("server.ecs_max_prefix4", "must be 0 to 32, got %d", s.ECSMaxPrefix4)
	}
	if s.ECSMaxPrefix6 < 0 || s.ECSMaxPrefix6 > 128 {
		v.fail("server.ecs_max_prefix6", "must be 0 to 128, got %d", s.ECSMaxPrefix6)
	}
}

// setDefaults lower-cases log.level and log.format.
func (l *Log) setDefaults() {
	l.Level = strings.ToLower(l.Level)
	l.Format = strings.ToLower(l.Format)
}

func (l *Log) validate(v *validator) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log.level", "must be debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		v.fail("log.format", "must be text or json, got %q", l.Format)
	}
	if l.QuerySample < 0 || l.QuerySample > 1 {
		v.fail("log.query_sample", "must be between 0 and 1 (a share of queries), got %g", l.QuerySample)
	}
}

func (a *Admin) validate(v *validator) {
	if a.Listen != "off" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			v.fail("admin.listen", "%q is not host:port (or \"off\")", a.Listen)
		}
	}
}

// validate checks the zone at key; twice is set when a zone before it
// has its name.
func (z *Zone) validate(v *validator, key string, twice bool) {
	switch {
	case z.Name == "":
		v.fail(key+".name", "missing: every zone needs a name")
	case twice:
		v.fail(key+".name", "zone %q is configured twice", z.Name)
	}
	if z.File == "" && len(z.Records) == 0 {
		v.fail(key, "zone %q has neither file nor records", z.Name)
	}
	if z.IncludeRoot != "" && z.File == "" {
		v.fail(key+".include_root", "is for a zone's file, and zone %q has none", z.Name)
	}
	if z.DNSSEC != nil {
		for _, p := range z.DNSSEC.Validate() {
			v.fail(key+".dnssec."+p.Key, "%s", p.Msg)
		}
		// Signatures are made per answer, online, and a transfer carries
		// none: a secondary would serve the zone's DNSKEY with unsigned
		// data, and validators would call every answer bogus.
		if len(z.Transfer.Allow) > 0 {
			v.fail(key+".transfer.allow", "zone %q is signed online (dnssec), and a transfer would carry no signatures: secondaries of a signed zone are not supported", z.Name)
		}
	}
}

// validateZones checks the [[zone]] tables: at least one, each named once
// and with data; their data is read later, by LoadZones.
func (c *Config) validateZones(v *validator) {
	if len(c.Zones) == 0 {
		v.errs = append(v.errs, fmt.Errorf("%s: no [[zone]] configured: a nameserver needs at least one zone", v.file))
	}
	names := map[string]bool{}
	for i, z := range c.Zones {
		name := strings.ToLower(strings.TrimSuffix(z.Name, "."))
		z.validate(v, fmt.Sprintf("zone[%d]", i), names[name])
		names[name] = true
	}
}

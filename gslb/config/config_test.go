package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/internal/tomlfile"
	"github.com/meridian-gslb/meridian/probes/checkconfig"

	"github.com/miekg/dns"
)

// zoneTable is a valid [[zone]] for configurations whose other parts are
// under test; it starts on its own line.
const zoneTable = `
[[zone]]
name = "example.test"
records = ["@ IN A 192.0.2.1"]
`

// errorsOf splits an error made by errors.Join into its parts.
func errorsOf(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func ttl(v uint32) *uint32 { return &v }

func TestParseFull(t *testing.T) {
	src := `# every key, none at its default
[server]
listen = ["127.0.0.1:5353", "[::1]:5353", ":53"]
udp_sockets = 4
udp_loop = "poller"
edns_udp_size = 1400
tcp_idle_timeout = "30s"
tcp_max_connections = 64
tcp_max_queries = 50
shutdown_timeout = "1m"
chaos = false
identity = "ns1.example.test"
version = "hidden"

[log]
level = "debug"
format = "json"

[[zone]]
name = "example.test"
file = "zones/example.test.zone"
default_ttl = 60

[[zone]]
name = "example.org."
records = [
  "@ IN A 192.0.2.1",
  "www IN A 192.0.2.2",
]
`
	cfg, err := Parse("conf/file.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path: "conf/file.toml",
		Server: Server{
			Listen:            []string{"127.0.0.1:5353", "[::1]:5353", ":53"},
			UDPSockets:        4,
			UDPLoop:           UDPLoopPoller,
			EDNSUDPSize:       1400,
			TCPIdleTimeout:    Duration{Duration: 30 * time.Second},
			TCPMaxConnections: 64,
			TCPMaxQueries:     50,
			TCPMaxPerClient:   DefaultTCPMaxPerClient,
			TCPMaxPerPrefix:   DefaultTCPMaxPerPrefix,
			TCPMessageTimeout: Duration{Duration: DefaultTCPMessageTimeout},
			ShutdownTimeout:   Duration{Duration: time.Minute},
			Chaos:             false,
			Identity:          "ns1.example.test",
			Version:           "hidden",
			ECS:               true,
			ECSMaxPrefix4:     DefaultECSMaxPrefix4,
			ECSMaxPrefix6:     DefaultECSMaxPrefix6,
			RRL:               rrlDefaults(),
			Dnstap: dnstap.Config{Sample: dnstap.DefaultSample, Buffer: dnstap.DefaultBuffer,
				ReconnectInterval: tomlfile.Duration{Duration: dnstap.DefaultRetry}},
		},
		Geo:      Geo{ReloadInterval: Duration{Duration: DefaultGeoReload}},
		Admin:    Admin{Listen: DefaultAdminListen},
		Cluster:  Cluster{StaleAfter: Duration{Duration: DefaultStaleAfter}, JoinTimeout: Duration{Duration: DefaultJoinTimeout}},
		Log:      Log{Level: "debug", Format: "json"},
		Transfer: xfr.Settings{History: xfr.DefaultHistory},
		Zones: []Zone{
			{Name: "example.test", File: "zones/example.test.zone", DefaultTTL: ttl(60), Line: 19},
			{Name: "example.org.", Records: []string{"@ IN A 192.0.2.1", "www IN A 192.0.2.2"}, Line: 24},
		},
	}
	cfg.lines = nil // the key index is internal; its lines are tested through errors
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", cfg, want)
	}
	if got := cfg.Zones[0].TTL(); got != 60 {
		t.Errorf("zone[0].TTL() = %d, want 60", got)
	}
	if got, want := cfg.ZonePath(cfg.Zones[0]), filepath.Join("conf", "zones", "example.test.zone"); got != want {
		t.Errorf("ZonePath = %q, want %q", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse("file.toml", []byte(zoneTable))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := &Config{
		Path: "file.toml",
		Server: Server{
			Listen:            []string{DefaultListen},
			UDPSockets:        0,
			UDPLoop:           UDPLoopBlocking,
			EDNSUDPSize:       DefaultEDNSUDPSize,
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
			RRL:               rrlDefaults(),
			Dnstap: dnstap.Config{Sample: dnstap.DefaultSample, Buffer: dnstap.DefaultBuffer,
				ReconnectInterval: tomlfile.Duration{Duration: dnstap.DefaultRetry}},
		},
		Geo:      Geo{ReloadInterval: Duration{Duration: DefaultGeoReload}},
		Admin:    Admin{Listen: DefaultAdminListen},
		Cluster:  Cluster{StaleAfter: Duration{Duration: DefaultStaleAfter}, JoinTimeout: Duration{Duration: DefaultJoinTimeout}},
		Log:      Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Zones:    []Zone{{Name: "example.test", Records: []string{"@ IN A 192.0.2.1"}, Line: 2}},
		Transfer: xfr.Settings{History: xfr.DefaultHistory},
	}
	cfg.lines = nil // the key index is internal; its lines are tested through errors
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", cfg, want)
	}
	if got := cfg.Zones[0].TTL(); got != DefaultZoneTTL {
		t.Errorf("TTL() = %d, want DefaultZoneTTL (%d)", got, DefaultZoneTTL)
	}
	// The documented values, so that a changed constant is a deliberate act.
	if DefaultListen != "127.0.0.1:53" || DefaultEDNSUDPSize != 1232 || DefaultTCPIdleTimeout != 10*time.Second ||
		DefaultTCPMaxConnections != 1024 || DefaultTCPMaxQueries != 1000 || DefaultShutdownTimeout != 5*time.Second ||
		DefaultZoneTTL != 3600 || DefaultLogLevel != "info" || DefaultLogFormat != "text" {
		t.Errorf("a default differs from the value documented in config.go")
	}
}

// Values at the edges of each allowed range are accepted.
func TestParseLimitsAccepted(t *testing.T) {
	for _, src := range []string{
		"[server]\nudp_sockets = 256\n",
		"[server]\nudp_sockets = 0\n",
		"[server]\nedns_udp_size = 512\n",
		"[server]\nedns_udp_size = 65535\n",
		"[server]\ntcp_max_connections = 1\ntcp_max_queries = 1\n",
		"[server]\nshutdown_timeout = \"0s\"\n",
		"[server]\nlisten = []\n",
		"[log]\nlevel = \"WARN\"\n",
		"[log]\nlevel = \"error\"\nformat = \"text\"\n",
		"[[zone]]\nname = \"a.test\"\nfile = \"a.zone\"\n",
	} {
		if _, err := Parse("file.toml", []byte(src+zoneTable)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// want holds one entry per error reported, in order; each entry's
		// strings must all appear in that error.
		want [][]string
	}{
		// Unknown keys and tables.
		{
			name: "unknown top-level key",
			src:  "listen = [\"127.0.0.1:53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:1: listen: unknown key"}},
		},
		{
			name: "unknown key in [server]",
			src:  "[server]\nlisten = [\"127.0.0.1:53\"]\nudp_socket = 2\n" + zoneTable,
			want: [][]string{{"file.toml:3: server.udp_socket: unknown key"}},
		},
		{
			name: "unknown key in the second zone",
			src: `[[zone]]
name = "a.test"
file = "a.zone"

[[zone]]
name = "b.test"
fiel = "b.zone"
records = ["@ IN A 192.0.2.1"]
`,
			want: [][]string{{"file.toml:7: zone[1].fiel: unknown key"}},
		},
		{
			name: "one unknown key in two zones",
			src: `[[zone]]
name = "a.test"
ttl = 60
file = "a.zone"
[[zone]]
name = "b.test"
ttl = 60
file = "b.zone"
`,
			want: [][]string{
				{"file.toml:3: zone[0].ttl: unknown key"},
				{"file.toml:7: zone[1].ttl: unknown key"},
			},
		},
		{
			name: "unknown table is reported once",
			src:  zoneTable + "\n[metrics]\nlisten = \":9153\"\npath = \"/metrics\"\n",
			want: [][]string{{"file.toml:6: metrics: unknown key"}},
		},
		{
			name: "unknown array of tables",
			src:  zoneTable + "[[backend]]\nname = \"b\"\n",
			want: [][]string{{"file.toml:5: backend[0]: unknown key"}},
		},
		{
			name: "unknown dotted key",
			src:  "server.listn = [\":53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:1: server.listn: unknown key"}},
		},
		{
			name: "unknown dotted keys",
			src:  "metrics.port = 9153\nmetrics.path = \"/m\"\n" + zoneTable,
			want: [][]string{
				{"file.toml:1: metrics.port: unknown key"},
				{"file.toml:2: metrics.path: unknown key"},
			},
		},
		{
			name: "unknown dotted key with spaces in a table",
			src:  "[server]\nchaos = true\ntcp . limits = 3\n" + zoneTable,
			want: [][]string{{"file.toml:3: server.tcp.limits: unknown key"}},
		},
		{
			name: "a signed zone cannot be transferred",
			src:  "[[zone]]\nname = \"a.test\"\nrecords = [\"@ IN A 192.0.2.1\"]\ndnssec = { key_dir = \"keys\" }\n[zone.transfer]\nallow = [{ prefix = \"127.0.0.0/8\" }]\n",
			want: [][]string{{"file.toml:6: zone[0].transfer.allow:", "no signatures"}},
		},
		{
			name: "a key the program sets itself",
			src:  zoneTable + "line = 3\n",
			want: [][]string{{"file.toml:5: zone[0].line: unknown key"}},
		},

		// Decoding errors stop at the first.
		{
			name: "type error",
			src:  "[server]\nlisten = 5\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.listen:", "incompatible types"}},
		},
		{
			name: "type error in log",
			src:  zoneTable + "[log]\nlevel = 3\n",
			want: [][]string{{"file.toml:6: log.level:", "incompatible types"}},
		},
		{
			name: "not a duration",
			src:  "[server]\ntcp_idle_timeout = \"banana\"\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.tcp_idle_timeout:", `"banana"`}},
		},
		{
			name: "TTL out of range",
			src:  zoneTable + "default_ttl = -1\n",
			want: [][]string{{"file.toml:5: zone.default_ttl:", "-1"}},
		},
		{
			name: "syntax error",
			src:  "[server]\nchaos = yes\n" + zoneTable,
			want: [][]string{{"file.toml:2:"}},
		},

		// Validation.
		{
			name: "listen without port",
			src:  "[server]\nlisten = [\"127.0.0.1\"]\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.listen:", `"127.0.0.1" is not host:port`}},
		},
		{
			name: "listen with IPv6 unbracketed",
			src:  "[server]\nlisten = [\"::1:53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.listen:", `"::1:53" is not host:port`}},
		},
		{
			name: "listen on a host name",
			src:  "[server]\nchaos = true\nlisten = [\"localhost:53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:3: server.listen:", `"localhost:53": host must be an IP address`}},
		},
		{
			name: "listen with empty port",
			src:  "[server]\nlisten = [\"127.0.0.1:\"]\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.listen:", "missing port"}},
		},
		{
			name: "listen twice",
			src:  "[server]\nlisten = [\"[::1]:53\", \"127.0.0.1:53\", \"[::1]:53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.listen:", `"[::1]:53" is listed twice`}},
		},
		{
			name: "listen in a dotted key",
			src:  "server.listen = [\"localhost:53\"]\n" + zoneTable,
			want: [][]string{{"file.toml:1: server.listen:", "host must be an IP address"}},
		},
		{
			name: "rrl rate negative",
			src:  "[server.rrl]\nenabled = true\nrate = -5\n" + zoneTable,
			want: [][]string{{"file.toml:3: server.rrl.rate:", "must be 1 to 1000000 responses per second, got -5"}},
		},
		{
			name: "rrl exempt not a prefix",
			src:  "[server.rrl]\nenabled = true\nexempt = [\"192.0.2.0/24\", \"monitoring\"]\n" + zoneTable,
			want: [][]string{{"file.toml:3: server.rrl.exempt[1]:", `"monitoring" is not a prefix`}},
		},
		{
			name: "udp_sockets negative",
			src:  "[server]\nudp_sockets = -1\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.udp_sockets:", "got -1"}},
		},
		{
			name: "udp_sockets too many",
			src:  "[server]\nudp_sockets = 257\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.udp_sockets:", "got 257"}},
		},
		{
			name: "udp_loop unknown",
			src:  "[server]\nudp_loop = \"epoll\"\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.udp_loop:", `must be "blocking" or "poller", got "epoll"`}},
		},
		{
			name: "edns_udp_size below 512",
			src:  "[server]\nedns_udp_size = 511\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.edns_udp_size:", "got 511"}},
		},
		{
			name: "edns_udp_size above 65535",
			src:  "[server]\nedns_udp_size = 65536\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.edns_udp_size:", "got 65536"}},
		},
		{
			name: "tcp_idle_timeout zero",
			src:  "[server]\ntcp_idle_timeout = \"0s\"\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.tcp_idle_timeout:", "must be positive"}},
		},
		{
			name: "tcp_max_connections zero",
			src:  "[server]\ntcp_max_connections = 0\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.tcp_max_connections:", "at least 1, got 0"}},
		},
		{
			name: "tcp_max_queries zero",
			src:  "[server]\ntcp_max_queries = 0\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.tcp_max_queries:", "at least 1, got 0"}},
		},
		{
			name: "shutdown_timeout negative",
			src:  "[server]\nshutdown_timeout = \"-1s\"\n" + zoneTable,
			want: [][]string{{"file.toml:2: server.shutdown_timeout:", "must not be negative"}},
		},
		{
			name: "log level",
			src:  zoneTable + "[log]\nlevel = \"loud\"\n",
			want: [][]string{{"file.toml:6: log.level:", `"loud"`}},
		},
		{
			name: "log format",
			src:  zoneTable + "[log]\nlevel = \"info\"\nformat = \"xml\"\n",
			want: [][]string{{"file.toml:7: log.format:", `"xml"`}},
		},
		{
			name: "no zones",
			src:  "[server]\nlisten = [\"127.0.0.1:53\"]\n",
			want: [][]string{{"file.toml: no [[zone]] configured"}},
		},
		{
			name: "zone without name",
			src:  zoneTable + "\n[[zone]]\nfile = \"b.zone\"\n",
			want: [][]string{{"file.toml:6: zone[1].name:", "missing"}},
		},
		{
			name: "zone configured twice",
			src:  zoneTable + "\n[[zone]]\nfile = \"b.zone\"\nname = \"Example.TEST.\"\n",
			want: [][]string{{"file.toml:8: zone[1].name:", `"Example.TEST." is configured twice`}},
		},
		{
			name: "zone without data",
			src:  zoneTable + "\n[[zone]]\nname = \"b.test\"\nrecords = []\n",
			want: [][]string{{"file.toml:6: zone[1]:", `"b.test" has neither file nor records`}},
		},

		// Everything wrong is reported at once.
		{
			name: "several errors",
			src: `[server]
listen = ["localhost:53"]
edns_udp_size = 100
bogus = true
[log]
level = "loud"
[[zone]]
name = "a.test"
`,
			want: [][]string{
				{"file.toml:4: server.bogus: unknown key"},
				{"file.toml:2: server.listen:"},
				{"file.toml:3: server.edns_udp_size:"},
				{"file.toml:6: log.level:"},
				{"file.toml:7: zone[0]:", "neither file nor records"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("file.toml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; got %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with its error")
			}
			errs := errorsOf(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, e := range errs {
				for _, w := range tc.want[i] {
					if !strings.Contains(e.Error(), w) {
						t.Errorf("error %d %q does not contain %q", i, e, w)
					}
				}
			}
		})
	}
}

func TestLoadZones(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("etc/zones/example.test.zone", `$TTL 300
@   IN SOA ns.example.test. h.example.test. 7 7200 3600 1209600 300
@   IN NS  ns.example.test.
ns  IN A   192.0.2.53
www IN A   192.0.2.10
`)
	absZone := write("elsewhere/example.org.zone", `@ 300 IN SOA ns.example.org. h.example.org. 1 7200 3600 1209600 300
@ 300 IN NS ns.example.org.
`)
	cfgPath := write("etc/meridian.toml", `
[[zone]]
name = "Example.Test"
file = "zones/example.test.zone"
default_ttl = 42
records = ["api IN A 192.0.2.20", "www 60 IN AAAA 2001:db8::10"]

[[zone]]
name = "example.org"
file = "`+filepath.ToSlash(absZone)+`"

[[zone]]
name = "inline.test"
records = [
  "@ IN SOA ns.inline.test. h.inline.test. 1 7200 3600 1209600 300",
  "@ IN NS ns.inline.test.",
]
`)
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, z := range set.Zones() {
		origins = append(origins, z.Origin())
	}
	if want := []string{"example.org.", "example.test.", "inline.test."}; !reflect.DeepEqual(origins, want) {
		t.Errorf("zones %v, want %v", origins, want)
	}
	// The file's records and the inline ones, which take the zone's default TTL.
	for _, tc := range []struct {
		qname string
		qtype uint16
		want  string
	}{
		{"www.example.test.", dns.TypeA, "www.example.test.\t300\tIN\tA\t192.0.2.10"},
		{"www.example.test.", dns.TypeAAAA, "www.example.test.\t60\tIN\tAAAA\t2001:db8::10"},
		{"api.example.test.", dns.TypeA, "api.example.test.\t42\tIN\tA\t192.0.2.20"},
		{"inline.test.", dns.TypeNS, "inline.test.\t3600\tIN\tNS\tns.inline.test."},
	} {
		z := set.Find(tc.qname)
		if z == nil {
			t.Errorf("no zone for %s", tc.qname)
			continue
		}
		r := z.Lookup(tc.qname, tc.qtype)
		if len(r.Answer) != 1 || r.Answer[0].String() != tc.want {
			t.Errorf("%s %s: answer %v, want %s", tc.qname, dns.TypeToString[tc.qtype], r.Answer, tc.want)
		}
	}
}

func TestLoadZonesErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nosoa.zone"), []byte("@ 300 IN NS ns.example.test.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.zone"), []byte("@ 300 IN NS ns.example.test.\nwww IN A 300.1.1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const soaNS = `"@ IN SOA ns h 1 7200 3600 1209600 300", "@ IN NS ns"`
	tests := []struct {
		name string
		src  string
		want [][]string
	}{
		{
			name: "zone file without SOA",
			src:  "[[zone]]\nname = \"example.test\"\nfile = \"nosoa.zone\"\n",
			want: [][]string{{"meridian.toml:1: zone[0]: zone example.test:", "no SOA"}},
		},
		{
			name: "zone file with a syntax error",
			src:  "[[zone]]\nname = \"example.test\"\nfile = \"bad.zone\"\n",
			want: [][]string{{"meridian.toml:1: zone[0].file: zone example.test:", "bad.zone:2:18: dns: bad A A"}},
		},
		{
			name: "zone file missing",
			src:  "[[zone]]\nname = \"example.test\"\nfile = \"absent.zone\"\n",
			want: [][]string{{"meridian.toml:1: zone[0].file: zone example.test:", "absent.zone"}},
		},
		{
			name: "bad inline record",
			src: "[[zone]]\nname = \"a.test\"\nrecords = [" + soaNS + "]\n\n" +
				"[[zone]]\nname = \"b.test\"\nrecords = [" + soaNS + `, "www IN A not-an-ip"]` + "\n",
			want: [][]string{{"meridian.toml:5: zone[1].records[2]: zone b.test:", `"www IN A not-an-ip"`}},
		},
		{
			name: "inline record outside the zone",
			src:  "[[zone]]\nname = \"a.test\"\nrecords = [" + soaNS + `, "www.b.test. IN A 192.0.2.1"]` + "\n",
			want: [][]string{{"meridian.toml:1: zone[0]: zone a.test:", "www.b.test.", "outside the zone"}},
		},
		{
			name: "zone name not a domain name",
			src:  "[[zone]]\nname = \"a..test\"\nrecords = [\"@ IN A 192.0.2.1\"]\n",
			want: [][]string{{"meridian.toml:1: zone[0].name:", `"a..test" is not a domain name`}},
		},
		{
			name: "every bad record of a zone is reported",
			src:  "[[zone]]\nname = \"example.test\"\nfile = \"bad.zone\"\nrecords = [\"x IN A 1.2.3\", \"y IN A 192.0.2.1\", \"z IN MX 5\"]\n",
			want: [][]string{
				{"zone[0].file:", "bad.zone:2:18: dns: bad A A"},
				{"zone[0].records[0]:", `"x IN A 1.2.3"`},
				{"zone[0].records[2]:", `"z IN MX 5"`},
			},
		},
		{
			name: "every failing zone is reported",
			src: "[[zone]]\nname = \"a.test\"\nfile = \"nosoa.zone\"\n" +
				"[[zone]]\nname = \"ok.test\"\nrecords = [" + soaNS + "]\n" +
				"[[zone]]\nname = \"c.test\"\nrecords = [\"@ IN NS ns\"]\n",
			want: [][]string{
				{"meridian.toml:1: zone[0]: zone a.test:", "no SOA"},
				{"meridian.toml:7: zone[2]: zone c.test:", "no SOA"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "meridian.toml"), []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			set, err := cfg.LoadZones()
			if err == nil {
				t.Fatalf("no error; got zones %v", set.Zones())
			}
			if set != nil {
				t.Errorf("LoadZones returned a set with its error")
			}
			errs := errorsOf(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, e := range errs {
				for _, w := range tc.want[i] {
					if !strings.Contains(e.Error(), w) {
						t.Errorf("error %d %q does not contain %q", i, e, w)
					}
				}
			}
		})
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/meridian.toml": {Data: []byte(`
[server]
listen = ["127.0.0.1:1053"]

[[zone]]
name = "example.test"
file = "zones/example.test.zone"
records = ["api 60 IN A 192.0.2.20"]
`)},
		"conf/zones/example.test.zone": {Data: []byte(`$TTL 300
@   IN SOA ns.example.test. h.example.test. 9 7200 3600 1209600 300
@   IN NS  ns.example.test.
ns  IN A   192.0.2.53
$INCLUDE www.include
`)},
		"conf/zones/www.include": {Data: []byte("www IN A 192.0.2.10\n")},
	}
	cfg, err := LoadFS(fsys, "conf/meridian.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FS == nil || cfg.Path != "conf/meridian.toml" {
		t.Errorf("FS %v, Path %q; want the FS and conf/meridian.toml", cfg.FS, cfg.Path)
	}
	if got := cfg.ZonePath(cfg.Zones[0]); got != "conf/zones/example.test.zone" {
		t.Errorf("ZonePath = %q, want conf/zones/example.test.zone", got)
	}
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	z := set.Find("www.example.test.")
	if z == nil {
		t.Fatal("example.test not loaded")
	}
	if z.Serial() != 9 {
		t.Errorf("serial %d, want 9 (the file in the FS)", z.Serial())
	}
	for qname, want := range map[string]string{
		"www.example.test.": "www.example.test.\t300\tIN\tA\t192.0.2.10",
		"api.example.test.": "api.example.test.\t60\tIN\tA\t192.0.2.20",
	} {
		r := z.Lookup(qname, dns.TypeA)
		if len(r.Answer) != 1 || r.Answer[0].String() != want {
			t.Errorf("%s: answer %v, want %s", qname, r.Answer, want)
		}
	}

	// The zone file is looked up in the FS, not on disk.
	delete(fsys, "conf/zones/example.test.zone")
	cfg, err = LoadFS(fsys, "conf/meridian.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.LoadZones(); err == nil || !strings.Contains(err.Error(), "conf/meridian.toml:5: zone[0].file:") {
		t.Errorf("LoadZones without the zone file: err = %v, want one naming conf/meridian.toml:5: zone[0].file", err)
	}

	if _, err := LoadFS(fsys, "conf/absent.toml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFS of a missing file: err = %v, want ErrNotExist", err)
	}
	if _, err := LoadFS(fstest.MapFS{"bad.toml": {Data: []byte("[server]\nlisten = 5\n" + zoneTable)}}, "bad.toml"); err == nil ||
		!strings.Contains(err.Error(), "bad.toml:2: server.listen:") {
		t.Errorf("LoadFS of a bad config: err = %v, want one naming bad.toml:2: server.listen", err)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "absent.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: err = %v, want ErrNotExist", err)
	}
}

func TestListenPortRange(t *testing.T) {
	tests := []struct {
		listen string
		ok     bool
	}{
		{`"127.0.0.1:0"`, true},
		{`"127.0.0.1:65535"`, true},
		{`"127.0.0.1:65536"`, false},
		{`"127.0.0.1:dns"`, false},
		{`"[::1]:99999"`, false},
	}
	for _, tt := range tests {
		src := "[server]\nlisten = [" + tt.listen + "]\n[[zone]]\nname = \"example.test\"\nrecords = [\"@ SOA a b 1 2 3 4 5\"]\n"
		_, err := Parse("p.toml", []byte(src))
		if tt.ok != (err == nil) {
			t.Errorf("listen %s: err %v, want ok=%v", tt.listen, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "p.toml:2: server.listen:") {
			t.Errorf("listen %s: error %q does not name line 2 and the key", tt.listen, err)
		}
	}
}

// poolCheck is a configuration with one dynamic record, one pool and one
// target, the pool's check written on line 16.
func poolCheck(check string) string {
	return `[[zone]]
name = "example.test"
records = ["@ IN A 192.0.2.1"]

[[region]]
name = "home"
lat = 1.0
lon = 2.0

[[record]]
name = "app.example.test"
policy = "failover"

[[record.pool]]
region = "home"
check = ` + check + `
[[record.pool.target]]
address = "192.0.2.10"
`
}

func TestCheckSpecs(t *testing.T) {
	defaults := CheckSpec{
		Target: "home/192.0.2.10", Interval: checkconfig.DefaultInterval, Timeout: checkconfig.DefaultTimeout,
		Rise: checkconfig.DefaultRise, Fall: checkconfig.DefaultFall,
	}
	spec := func(edit func(*CheckSpec)) CheckSpec {
		s := defaults
		edit(&s)
		return s
	}
	tests := []struct {
		name  string
		check string
		want  CheckSpec
	}{
		{
			name:  "tcp from a source address",
			check: `{ type = "tcp", port = 8080, source = "192.0.2.99" }`,
			want: spec(func(s *CheckSpec) {
				s.Type, s.Addr, s.Source = "tcp", "192.0.2.10:8080", netip.MustParseAddr("192.0.2.99")
			}),
		},
		{
			name:  "http defaults",
			check: `{ type = "http", port = 80 }`,
			want:  spec(func(s *CheckSpec) { s.Type, s.Addr, s.Method, s.Path = "http", "192.0.2.10:80", "GET", "/" }),
		},
		{
			name: "https with every key",
			check: `{ type = "https", port = 443, method = "head", path = "/health", host = "app.example.test", expect = [200, 204],
  body = "ready", body_regexp = "version \\d+", ca_file = "ca.pem", server_name = "app.internal",
  cert_file = "tls/client.pem", key_file = "/etc/meridian/client.key", source = "192.0.2.99" }`,
			want: spec(func(s *CheckSpec) {
				s.Type, s.Addr, s.Source = "https", "192.0.2.10:443", netip.MustParseAddr("192.0.2.99")
				s.Method, s.Path, s.Host, s.Expect = "HEAD", "/health", "app.example.test", []int{200, 204}
				s.Body, s.BodyRegexp = "ready", `version \d+`
				s.CAFile, s.ServerName = filepath.Join("conf", "ca.pem"), "app.internal"
				s.CertFile, s.KeyFile = filepath.Join("conf", "tls", "client.pem"), "/etc/meridian/client.key"
			}),
		},
		{
			name:  "dns defaults",
			check: `{ type = "dns", query_name = "app.example.test" }`,
			want: spec(func(s *CheckSpec) {
				s.Type, s.Addr = "dns", "192.0.2.10:53"
				s.QueryName, s.QueryType, s.Rcode = "app.example.test.", dns.TypeA, dns.RcodeSuccess
			}),
		},
		{
			name:  "dns with every key",
			check: `{ type = "dns", port = 5353, query_name = "example.test.", query_type = "mx", rcode = "nxdomain", answer = "10 mail.example.test.", source = "192.0.2.99" }`,
			want: spec(func(s *CheckSpec) {
				s.Type, s.Addr, s.Source = "dns", "192.0.2.10:5353", netip.MustParseAddr("192.0.2.99")
				s.QueryName, s.QueryType, s.Rcode, s.Answer = "example.test.", dns.TypeMX, dns.RcodeNameError, "10 mail.example.test."
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join("conf", "meridian.toml"), []byte(poolCheck(tt.check)))
			if err != nil {
				t.Fatal(err)
			}
			g, err := cfg.BuildGSLB()
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Checks) != 1 || !reflect.DeepEqual(g.Checks[0], tt.want) {
				t.Errorf("checks:\n got %+v\nwant %+v", g.Checks, tt.want)
			}
		})
	}
	if checkconfig.DefaultDNSPort != 53 || checkconfig.DefaultQueryType != "A" || checkconfig.DefaultRcode != "NOERROR" || checkconfig.DefaultMethod != "GET" {
		t.Errorf("a check default differs from the value documented in gslb.go")
	}
}

func TestCheckErrors(t *testing.T) {
	const at = "file.toml:16: record[0].pool[0].check"
	tests := []struct {
		name  string
		check string
		want  []string // one error, with each of these
	}{
		{"method on tcp", `{ type = "tcp", port = 80, method = "HEAD" }`, []string{at + ".method:", `only for type = "http" or "https"`, `type = "tcp"`}},
		{"method not a token", `{ type = "http", port = 80, method = "GE T" }`, []string{at + ".method:", `"GE T" is not an HTTP method`}},
		{"body_regexp that does not compile", `{ type = "http", port = 80, body_regexp = "ready(" }`, []string{at + ".body_regexp:", "missing closing )"}},
		{"body_regexp on dns", `{ type = "dns", query_name = "a.test", body_regexp = "x" }`, []string{at + ".body_regexp:", "only for"}},
		{"cert_file without key_file", `{ type = "https", port = 443, cert_file = "c.pem" }`, []string{at + ".key_file:", "missing", "both cert_file and key_file"}},
		{"key_file without cert_file", `{ type = "https", port = 443, key_file = "c.key" }`, []string{at + ".cert_file:", "missing"}},
		{"client certificate on http", `{ type = "http", port = 80, cert_file = "c.pem" }`, []string{at + ".cert_file:", `only for type = "https"`}},
		{"source not an address", `{ type = "tcp", port = 80, source = "eth0" }`, []string{at + ".source:", `"eth0" is not an IP address`}},
		{"source of the other family", `{ type = "tcp", port = 80, source = "2001:db8::1" }`, []string{at + ".source:", "2001:db8::1 cannot reach 192.0.2.10"}},
		{"source on a check that does not run", `{ type = "none", source = "192.0.2.99" }`, []string{at + ".source:", "only for checks that run"}},
		{"dns without query_name", `{ type = "dns" }`, []string{at + ".query_name:", "missing"}},
		{"dns query_name not a name", `{ type = "dns", query_name = "a..test" }`, []string{at + ".query_name:", `"a..test" is not a domain name`}},
		{"dns query_type unknown", `{ type = "dns", query_name = "a.test", query_type = "BOGUS" }`, []string{at + ".query_type:", `"BOGUS" is not a DNS record type`}},
		{"dns zone transfer", `{ type = "dns", query_name = "a.test", query_type = "axfr" }`, []string{at + ".query_type:", "AXFR cannot be checked"}},
		{"dns rcode unknown", `{ type = "dns", query_name = "a.test", rcode = "FINE" }`, []string{at + ".rcode:", `"FINE" is not an rcode`}},
		{"dns answer not of the type", `{ type = "dns", query_name = "a.test", answer = "mail.example.test." }`, []string{at + ".answer:", `"mail.example.test." is not the data of a A record`}},
		{"query_name on tcp", `{ type = "tcp", port = 80, query_name = "a.test" }`, []string{at + ".query_name:", `only for type = "dns"`}},
		{"answer on http", `{ type = "http", port = 80, answer = "192.0.2.1" }`, []string{at + ".answer:", `only for type = "dns"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("file.toml", []byte(poolCheck(tt.check)))
			errs := errorsOf(err)
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(errs), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs[0].Error(), w) {
					t.Errorf("error %q does not contain %q", errs[0], w)
				}
			}
		})
	}
}

// One target in one region has one health: two records checking it two
// ways is an error, the new keys included.
func TestCheckSpecsDiffer(t *testing.T) {
	src := poolCheck(`{ type = "dns", query_name = "a.test", answer = "192.0.2.1" }`) + `
[[record]]
name = "other.example.test"
policy = "failover"

[[record.pool]]
region = "home"
check = { type = "dns", query_name = "a.test", answer = "CHECK" }
[[record.pool.target]]
address = "192.0.2.10"
`
	for answer, wantErr := range map[string]bool{"192.0.2.1": false, "192.0.2.2": true} {
		cfg, err := Parse("file.toml", []byte(strings.Replace(src, "CHECK", answer, 1)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.BuildGSLB()
		if gotErr := err != nil; gotErr != wantErr || (gotErr && !strings.Contains(err.Error(), "record[1].pool[0].target[0]: target home/192.0.2.10 is checked one way here and another way elsewhere")) {
			t.Errorf("answer %s: error %v, want an error: %v", answer, err, wantErr)
		}
	}
}

// rrlDefaults is [server.rrl] left out: off, with the documented defaults.
func rrlDefaults() rrl.Config {
	slip := rrl.DefaultSlip
	return rrl.Config{Rate: rrl.DefaultRate, Slip: &slip, IPv4Prefix: rrl.DefaultIPv4Prefix,
		IPv6Prefix: rrl.DefaultIPv6Prefix, TableSize: rrl.DefaultTableSize}
}

// TestIncludeRoot: a zone's include_root widens what its file's $INCLUDEs
// may read to a folder above it, and no further; without it, the zone
// file's folder is the limit.
func TestIncludeRoot(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"conf/zones/a/a.zone":      "$TTL 300\n@ IN SOA ns h 1 7200 3600 1209600 300\n$INCLUDE ../common/ns.inc\n",
		"conf/zones/common/ns.inc": "@ IN NS ns.example.test.\nns IN A 192.0.2.53\n",
		"conf/zones/b/b.zone":      "$TTL 300\n@ IN SOA ns h 1 7200 3600 1209600 300\n@ IN NS ns\n$INCLUDE ../../../secret.txt\n",
		"secret.txt":               "root:x:0:0:secret\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, zone string
		want       string // "" for no error
	}{
		{"include from a shared folder", `name = "example.test"` + "\nfile = \"zones/a/a.zone\"\ninclude_root = \"zones\"", ""},
		{"the same without include_root", `name = "example.test"` + "\nfile = \"zones/a/a.zone\"", "may only read files in the zone file's folder"},
		{"an escape past include_root", `name = "example.test"` + "\nfile = \"zones/b/b.zone\"\ninclude_root = \"zones\"", "may only read files"},
		{"a file outside its include_root", `name = "example.test"` + "\nfile = \"zones/a/a.zone\"\ninclude_root = \"zones/b\"", "zone[0].include_root: zone example.test:"},
		{"include_root without a file", `name = "example.test"` + "\nrecords = [\"@ IN NS ns\"]\ninclude_root = \"zones\"", "zone[0].include_root: is for a zone's file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(filepath.Join(dir, "conf", "meridian.toml"), []byte("[[zone]]\n"+tt.zone+"\n"))
			if err == nil {
				_, err = cfg.LoadZones()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "root:x"):
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimalForward is the smallest valid forwarder file: one pool, one
// backend, one listener.
const minimalForward = `[[pool]]
name = "web"
[[pool.backend]]
address = "10.0.0.1:8080"

[[listener]]
name = "web"
listen = "127.0.0.1:8080"
pool = "web"
`

func TestParseForwardDefaults(t *testing.T) {
	f, err := ParseForward("fwd.toml", []byte(minimalForward))
	if err != nil {
		t.Fatal(err)
	}
	p, l := f.Pools[0], f.Listeners[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"admin.listen", f.Admin.Listen, DefaultForwardAdminListen},
		{"admin reads open", f.Admin.ReadsOpen(), true},
		{"log.level", f.Log.Level, "info"},
		{"balance", p.Balance, DefaultBalance},
		{"hash_key", p.HashKey, DefaultHashKey},
		{"min_healthy", p.MinHealthy, DefaultMinHealthy},
		{"all_unhealthy", p.AllUnhealthy, DefaultAllUnhealthy},
		{"initial_state", p.InitialState, DefaultInitialState},
		{"connect_timeout", p.ConnectTimeout.Duration, DefaultConnectTimeout},
		{"connect_attempts", p.ConnectAttempts, DefaultConnectAttempts},
		{"drain_timeout", p.DrainTimeout.Duration, DefaultDrainTimeout},
		{"proxy_protocol", p.ProxyProtocol, ""},
		{"check.type", p.Check.Type, "tcp"},
		{"check.interval", p.Check.Interval.Duration, DefaultCheckInterval},
		{"check.timeout", p.Check.Timeout.Duration, DefaultCheckTimeout},
		{"check.rise", p.Check.Rise, 2},
		{"check.fall", p.Check.Fall, 3},
		{"outlier.consecutive_failures", *p.Outlier.ConsecutiveFailures, DefaultConsecutiveFailures},
		{"outlier.base_ejection_time", p.Outlier.BaseEjectionTime.Duration, DefaultBaseEjectionTime},
		{"outlier.max_ejection_time", p.Outlier.MaxEjectionTime.Duration, DefaultMaxEjectionTime},
		{"outlier.max_ejection_percent", *p.Outlier.MaxEjectionPercent, DefaultMaxEjectionPercent},
		{"backend.weight", *p.Backends[0].Weight, 1},
		{"backend.max_connections", *p.Backends[0].MaxConnections, 0},
		{"listener.protocol", l.Protocol, "tcp"},
		{"listener.max_connections", l.MaxConnections, DefaultListenerMaxConns},
		{"listener.idle_timeout", l.IdleTimeout.Duration, DefaultTCPIdle},
		{"listener.handshake_timeout", l.HandshakeTimeout.Duration, DefaultHandshakeTimeout},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The documented values, so that a changed constant is a deliberate act.
	if DefaultCheckRise != 2 || DefaultCheckFall != 3 || DefaultDrainTimeout != 30*time.Second ||
		DefaultConsecutiveFailures != 5 || DefaultMaxEjectionPercent != 10 || DefaultUDPIdle != 30*time.Second {
		t.Errorf("a default differs from the value documented in forward.go")
	}
	// A UDP listener idles out sooner than a TCP one.
	f, err = ParseForward("fwd.toml", []byte(strings.Replace(minimalForward, `pool = "web"`+"\n", "pool = \"web\"\nprotocol = \"udp\"\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Listeners[0].IdleTimeout.Duration; got != DefaultUDPIdle {
		t.Errorf("udp idle_timeout = %v, want %v", got, DefaultUDPIdle)
	}
}

func TestParseForwardFull(t *testing.T) {
	src := `[log]
level = "DEBUG"
format = "json"

[admin]
listen = "127.0.0.1:0"
token_file = "token"
open_reads = false

[health]
listen = "0.0.0.0:8081"

[[pool]]
name = "web"
balance = "Maglev"
hash_key = "source_addr"
min_healthy = 2
all_unhealthy = "panic"
initial_state = "down"
slow_start = "30s"
connect_timeout = "1s"
connect_attempts = 2
drain_timeout = "0s"
proxy_protocol = "v2"
max_connections = 100

[pool.check]
type = "http"
port = 9000
path = "/healthz"
body = "ok"
interval = "1s"
timeout = "500ms"
rise = 3
fall = 4

[pool.outlier]
consecutive_failures = 0
base_ejection_time = "10s"
max_ejection_time = "1m"
max_ejection_percent = 50

[[pool.backend]]
address = "10.0.0.1:8080"
weight = 3
max_connections = 10
drain = true

[[pool.backend]]
address = "app.internal:8080"
check_address = "10.0.0.9:9999"

[[pool]]
name = "api"
[[pool.backend]]
address = "[2001:db8::1]:443"

[[listener]]
name = "tls"
protocol = "tls"
listen = "[::]:443"
pool = "web"
accept_proxy_protocol = true
[[listener.route]]
sni = ["API.example.test.", "*.apps.example.test"]
pool = "api"

[[listener]]
name = "dns"
protocol = "udp"
listen = "0.0.0.0:53"
pool = "api"
max_flows = 5
idle_timeout = "5s"
`
	f, err := ParseForward(filepath.Join("conf", "fwd.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := f.Pools[0]
	if p.Balance != "maglev" || p.HashKey != "source_addr" || p.MinHealthy != 2 || p.AllUnhealthy != "panic" ||
		p.InitialState != "down" || p.SlowStart.Duration != 30*time.Second || p.DrainTimeout.Duration != 0 ||
		p.ProxyProtocol != "v2" || *p.Outlier.ConsecutiveFailures != 0 || *p.Outlier.MaxEjectionPercent != 50 {
		t.Errorf("pool decoded as %+v", p)
	}
	if b := p.Backends[0]; *b.Weight != 3 || *b.MaxConnections != 10 || !b.Drain {
		t.Errorf("backend[0] = %+v", b)
	}
	if b := p.Backends[1]; *b.MaxConnections != 100 {
		t.Errorf("backend[1] max_connections = %d, want the pool's 100", *b.MaxConnections)
	}
	if got := f.Listeners[0].Routes[0].SNI; got[0] != "api.example.test" || got[1] != "*.apps.example.test" {
		t.Errorf("SNI names = %q, want lower case without the final dot", got)
	}
	if f.Log.Level != "debug" || f.Admin.ReadsOpen() {
		t.Errorf("log level %q, open reads %v", f.Log.Level, f.Admin.ReadsOpen())
	}
	if got, want := f.ResolvePath("token"), filepath.Join("conf", "token"); got != want {
		t.Errorf("ResolvePath = %q, want %q", got, want)
	}

	// The active check: the pool's port on the backend's host, or the
	// backend's check_address.
	spec, ok := f.CheckSpec(&f.Pools[0], &f.Pools[0].Backends[0])
	if !ok || spec.Type != "http" || spec.Addr != "10.0.0.1:9000" || spec.Path != "/healthz" || spec.Body != "ok" ||
		spec.Interval != time.Second || spec.Rise != 3 || spec.Fall != 4 {
		t.Errorf("CheckSpec(backend 0) = %+v, %v", spec, ok)
	}
	if spec, _ := f.CheckSpec(&f.Pools[0], &f.Pools[0].Backends[1]); spec.Addr != "10.0.0.9:9999" {
		t.Errorf("CheckSpec(backend 1).Addr = %q, want the check_address", spec.Addr)
	}
	if spec, _ := f.CheckSpec(&f.Pools[1], &f.Pools[1].Backends[0]); spec.Addr != "[2001:db8::1]:443" || spec.Type != "tcp" {
		t.Errorf("CheckSpec(api) = %+v, want a tcp check of the backend's own address", spec)
	}
}

func TestParseForwardErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error
	}{
		{"unknown key with its line", minimalForward + "[[pool]]\nname = \"x\"\nbalanse = \"p2c\"\n",
			[]string{"fwd.toml:12: pool[1].balanse: unknown key"}},
		{"type mismatch", "[[pool]]\nname = 5\n", []string{"fwd.toml:2", "pool.name"}},
		{"no pool, no listener", "[log]\nlevel = \"info\"\n",
			[]string{"no [[pool]] configured", "no [[listener]] configured"}},
		{"unknown balancer", strings.Replace(minimalForward, "name = \"web\"\n[[pool.backend]]", "name = \"web\"\nbalance = \"random\"\n[[pool.backend]]", 1),
			[]string{"fwd.toml:3: pool[0].balance: must be one of round_robin"}},
		{"weight zero", strings.Replace(minimalForward, "address = \"10.0.0.1:8080\"", "address = \"10.0.0.1:8080\"\nweight = 0", 1),
			[]string{"fwd.toml:5: pool[0].backend[0].weight: must be 1 to", "drain = true"}},
		{"backend without port", strings.Replace(minimalForward, "10.0.0.1:8080", "10.0.0.1", 1),
			[]string{"fwd.toml:4: pool[0].backend[0].address", "not host:port"}},
		{"backend twice", strings.Replace(minimalForward, "\n\n[[listener]]", "\n[[pool.backend]]\naddress = \"10.0.0.1:8080\"\n\n[[listener]]", 1),
			[]string{"pool[0].backend[1].address", "listed twice"}},
		{"listener on a name", strings.Replace(minimalForward, `listen = "127.0.0.1:8080"`, `listen = "localhost:8080"`, 1),
			[]string{"fwd.toml:8: listener[0].listen", "must be an IP address"}},
		{"unknown pool", strings.Replace(minimalForward, "pool = \"web\"\n", "pool = \"api\"\n", 1),
			[]string{"fwd.toml:9: listener[0].pool: no [[pool]] is named \"api\""}},
		{"min_healthy above the backends", strings.Replace(minimalForward, "name = \"web\"\n[[pool.backend]]", "name = \"web\"\nmin_healthy = 2\n[[pool.backend]]", 1),
			[]string{"pool[0].min_healthy: must be 1 to the number of backends (1), got 2"}},
		{"routes on tcp", minimalForward + "[[listener.route]]\nsni = [\"a.test\"]\npool = \"web\"\n",
			[]string{"listener[0].route: SNI routes need protocol = \"tls\""}},
		{"bad wildcard", strings.Replace(minimalForward, "pool = \"web\"\n", "pool = \"web\"\nprotocol = \"tls\"\n", 1) + "[[listener.route]]\nsni = [\"a.*.test\"]\npool = \"web\"\n",
			[]string{"listener[0].route[0].sni: \"a.*.test\": a wildcard stands for one whole label"}},
		{"sni hash on tcp", strings.Replace(minimalForward, "name = \"web\"\n[[pool.backend]]", "name = \"web\"\nbalance = \"rendezvous\"\nhash_key = \"sni\"\n[[pool.backend]]", 1),
			[]string{"listener[0].pool: pool \"web\" hashes on sni, which only a tls listener reads"}},
		{"PROXY header over udp", strings.Replace(strings.Replace(minimalForward, "name = \"web\"\n[[pool.backend]]", "name = \"web\"\nproxy_protocol = \"v1\"\n[[pool.backend]]", 1), "pool = \"web\"\n", "pool = \"web\"\nprotocol = \"udp\"\n", 1),
			[]string{"pool \"web\" sends a PROXY header"}},
		{"two listeners on one address", minimalForward + "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:8080\"\npool = \"web\"\n",
			[]string{"listener[1].listen: tcp 127.0.0.1:8080 is also listener \"web\"'s"}},
		{"max ejection below base", strings.Replace(minimalForward, "\n\n[[listener]]", "\n[pool.outlier]\nbase_ejection_time = \"1m\"\nmax_ejection_time = \"30s\"\n\n[[listener]]", 1),
			[]string{"pool[0].outlier.max_ejection_time: must be at least base_ejection_time"}},
		{"check type", strings.Replace(minimalForward, "\n\n[[listener]]", "\n[pool.check]\ntype = \"icmp\"\n\n[[listener]]", 1),
			[]string{"pool[0].check.type: must be one of"}},
		{"log level", "[log]\nlevel = \"loud\"\n" + minimalForward, []string{"fwd.toml:2: log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseForward("fwd.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadForward(t *testing.T) {
	if _, err := LoadForward(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "fwd.toml")
	if err := os.WriteFile(path, []byte(minimalForward), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := LoadForward(path)
	if err != nil || f.Path != path {
		t.Fatalf("LoadForward = %v, %v", f, err)
	}
	// The example shipped with the forwarder is valid.
	if _, err := LoadForward(filepath.Join("..", "..", "examples", "forward", "forward.toml")); err != nil {
		t.Errorf("examples/forward/forward.toml: %v", err)
	}
}

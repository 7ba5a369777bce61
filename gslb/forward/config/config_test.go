package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/probes/checkconfig"
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
		{"check.interval", p.Check.Interval.Duration, checkconfig.DefaultInterval},
		{"check.timeout", p.Check.Timeout.Duration, checkconfig.DefaultTimeout},
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
	if checkconfig.DefaultRise != 2 || checkconfig.DefaultFall != 3 || DefaultDrainTimeout != 30*time.Second ||
		DefaultConsecutiveFailures != 5 || DefaultMaxEjectionPercent != 10 || DefaultUDPIdle != 30*time.Second {
		t.Errorf("a default differs from the value documented in forward.go")
	}
	// A UDP listener idles out sooner than a TCP one.
	f, err = ParseForward("fwd.toml", []byte(withListenerKeys(minimalForward, "protocol = \"udp\"")))
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
		{"unknown balancer", withPoolKeys(minimalForward, "balance = \"random\""),
			[]string{"fwd.toml:3: pool[0].balance: must be one of round_robin"}},
		{"weight zero", strings.Replace(minimalForward, "address = \"10.0.0.1:8080\"", "address = \"10.0.0.1:8080\"\nweight = 0", 1),
			[]string{"fwd.toml:5: pool[0].backend[0].weight: must be 1 to", "drain = true"}},
		{"backend without port", strings.Replace(minimalForward, "10.0.0.1:8080", "10.0.0.1", 1),
			[]string{"fwd.toml:4: pool[0].backend[0].address", "not host:port"}},
		{"backend twice", withPoolTables(minimalForward, "[[pool.backend]]\naddress = \"10.0.0.1:8080\""),
			[]string{"pool[0].backend[1].address", "listed twice"}},
		{"listener on a name", strings.Replace(minimalForward, `listen = "127.0.0.1:8080"`, `listen = "localhost:8080"`, 1),
			[]string{"fwd.toml:8: listener[0].listen", "must be an IP address"}},
		{"unknown pool", strings.Replace(minimalForward, "pool = \"web\"\n", "pool = \"api\"\n", 1),
			[]string{"fwd.toml:9: listener[0].pool: no [[pool]] is named \"api\""}},
		{"min_healthy above the backends", withPoolKeys(minimalForward, "min_healthy = 2"),
			[]string{"pool[0].min_healthy: must be 1 to the number of backends (1), got 2"}},
		{"routes on tcp", minimalForward + "[[listener.route]]\nsni = [\"a.test\"]\npool = \"web\"\n",
			[]string{"listener[0].route: SNI routes need protocol = \"tls\""}},
		{"bad wildcard", withListenerKeys(minimalForward, "protocol = \"tls\"") + "[[listener.route]]\nsni = [\"a.*.test\"]\npool = \"web\"\n",
			[]string{"listener[0].route[0].sni: \"a.*.test\": a wildcard stands for one whole label"}},
		{"sni hash on tcp", withPoolKeys(minimalForward, "balance = \"rendezvous\"\nhash_key = \"sni\""),
			[]string{"listener[0].pool: pool \"web\" hashes on sni, which only tls and https listeners read"}},
		{"PROXY header over udp", strings.Replace(withPoolKeys(minimalForward, "proxy_protocol = \"v1\""), "pool = \"web\"\n", "pool = \"web\"\nprotocol = \"udp\"\n", 1),
			[]string{"pool \"web\" sends a PROXY header"}},
		{"two listeners on one address", minimalForward + "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:8080\"\npool = \"web\"\n",
			[]string{"listener[1].listen: tcp 127.0.0.1:8080 is also listener \"web\"'s"}},
		{"max ejection below base", withPoolTables(minimalForward, "[pool.outlier]\nbase_ejection_time = \"1m\"\nmax_ejection_time = \"30s\""),
			[]string{"pool[0].outlier.max_ejection_time: must be at least base_ejection_time"}},
		{"check type", withPoolTables(minimalForward, "[pool.check]\ntype = \"icmp\""),
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
	// The examples shipped with the forwarder are valid.
	for _, name := range []string{"forward.toml", "bench.toml", "l7.toml", "bench-l7.toml"} {
		if _, err := LoadForward(filepath.Join("..", "..", "..", "examples", "forward", name)); err != nil {
			t.Errorf("examples/forward/%s: %v", name, err)
		}
	}
}

// withPoolKeys adds keys to the first pool of a minimal file.
func withPoolKeys(src, keys string) string {
	return mustReplace(src, "name = \"web\"\n[[pool.backend]]", "name = \"web\"\n"+keys+"\n[[pool.backend]]")
}

// withPoolTables adds tables ([pool.check] and the like) to the first
// pool of a minimal file.
func withPoolTables(src, tables string) string {
	return mustReplace(src, "\n\n[[listener]]", "\n"+tables+"\n\n[[listener]]")
}

// withListenerKeys adds keys to the listener of a minimal file; a
// protocol given replaces its own.
func withListenerKeys(src, keys string) string {
	if strings.Contains(keys, "protocol = ") {
		src = strings.Replace(src, "protocol = \"http\"\n", "", 1)
	}
	return mustReplace(src, "pool = \"web\"\n", "pool = \"web\"\n"+keys+"\n")
}

// mustReplace replaces the first old in s, which must be there: a test
// whose change did not apply would test the file unchanged.
func mustReplace(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic(fmt.Sprintf("%q not in the test's file", old))
	}
	return strings.Replace(s, old, new, 1)
}

// minimalHTTP is the smallest L7 forwarder: one pool behind an http
// listener.
const minimalHTTP = `[[pool]]
name = "web"
[[pool.backend]]
address = "10.0.0.1:8080"

[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:8080"
pool = "web"
`

func TestParseForwardHTTPDefaults(t *testing.T) {
	f, err := ParseForward("fwd.toml", []byte(minimalHTTP+`[[listener.route]]
path_prefix = "/a"
header = { x-env = "canary" }
redirect = "https://{host}{uri}"
[[listener.route]]
name = "gone"
respond = { status = 410 }
`))
	if err != nil {
		t.Fatal(err)
	}
	p, l := f.Pools[0], f.Listeners[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"idle_timeout", l.IdleTimeout.Duration, DefaultHTTPIdle},
		{"read_header_timeout", l.ReadHeaderTimeout.Duration, DefaultReadHeaderTimeout},
		{"max_header_bytes", l.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"max_body_bytes", l.MaxBodyBytes, int64(0)},
		{"metrics", l.MetricsOn(), true},
		{"http.scheme", p.HTTP.Scheme, "http"},
		{"http.timeout", p.HTTP.Timeout.Duration, DefaultTryTimeout},
		{"http.max_idle", p.HTTP.MaxIdle, DefaultMaxIdlePerBackend},
		{"http.retries", *p.HTTP.Retries, DefaultRetries},
		{"http.retry_statuses", fmt.Sprint(p.HTTP.RetryStatuses), "[502 503 504]"},
		{"http.retry_budget", *p.HTTP.RetryBudget, DefaultRetryBudget},
		{"http.retry_budget_min", *p.HTTP.RetryBudgetMin, DefaultRetryBudgetMin},
		{"http.retry_buffer", *p.HTTP.RetryBuffer, DefaultRetryBuffer},
		{"sticky.mode", p.Sticky.Mode, ""},
		{"breaker", p.Breaker.Enabled(), false},
		{"breaker.open_time", p.Breaker.OpenTime.Duration, DefaultBreakerOpenTime},
		{"access_log.sample", *f.AccessLog.Sample, 1.0},
		{"route name", l.Routes[0].RouteName(0), "route-0"},
		{"redirect_code", l.Routes[0].RedirectCode, DefaultRedirectCode},
		{"header names", fmt.Sprint(l.Routes[0].Header), "map[X-Env:canary]"},
		{"respond content type", l.Routes[1].Respond.ContentType, "text/plain; charset=utf-8"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if DefaultRetryBudget != 0.2 || DefaultTLSMinVersion != "1.2" || DefaultRedirectCode != 308 {
		t.Error("a default differs from the value documented in forward.go")
	}
}

func TestParseForwardHTTPErrors(t *testing.T) {
	withRoute := func(route string) string { return minimalHTTP + "[[listener.route]]\n" + route }
	withPool := func(table string) string { return withPoolTables(minimalHTTP, table) }
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"two paths", withRoute("path = \"/a\"\npath_prefix = \"/b\"\npool = \"web\"\n"), []string{"listener[0].route[0]: path, path_prefix and path_regexp exclude one another"}},
		{"no action", withRoute("path = \"/a\"\n"), []string{"set exactly one of pool, redirect and respond"}},
		{"two actions", withRoute("pool = \"web\"\nredirect = \"https://{host}{uri}\"\n"), []string{"set exactly one of pool, redirect and respond"}},
		{"bad regexp", withRoute("path_regexp = \"(\"\npool = \"web\"\n"), []string{"fwd.toml:12: listener[0].route[0].path_regexp: error parsing regexp"}},
		{"redirect code", withRoute("redirect = \"https://x/\"\nredirect_code = 200\n"), []string{"listener[0].route[0].redirect_code: must be 301, 302, 303, 307 or 308"}},
		{"strip without pool", withRoute("respond = { status = 404 }\nstrip_prefix = \"/a\"\n"), []string{"they need pool"}},
		{"route name twice", withRoute("name = \"a\"\npool = \"web\"\n[[listener.route]]\nname = \"a\"\npool = \"web\"\n"), []string{"listener[0].route[1].name: route \"a\" is defined twice"}},
		{"route name in URLs", withRoute("name = \"a/b\"\npool = \"web\"\n"), []string{"a route name has no slash"}},
		{"sni on http", withRoute("sni = [\"a.test\"]\npool = \"web\"\n"), []string{"listener[0].route[0].sni: is for tls listeners"}},
		{"http match on tls", withListenerKeys(minimalHTTP, "protocol = \"tls\"") + "[[listener.route]]\nsni = [\"a.test\"]\npath = \"/x\"\npool = \"web\"\n", []string{"matches on requests, which only http and https listeners read"}},
		{"canary of its own pool", withRoute("pool = \"web\"\ncanary = { pool = \"web\", percent = 5 }\n"), []string{"canary: pool \"web\" is the route's own pool"}},
		{"canary percent", withPool("[[pool]]\nname = \"v2\"\n[[pool.backend]]\naddress = \"10.0.0.2:80\"") + "[[listener.route]]\npool = \"web\"\ncanary = { pool = \"v2\", percent = 150 }\n", []string{"percent must be 0 to 100, got 150"}},
		{"unknown rate limit", withRoute("pool = \"web\"\nrate_limit = \"api\"\n"), []string{"listener[0].route[0].rate_limit: no [[rate_limit]] is named \"api\""}},
		{"trusted proxies", minimalHTTP + "trusted_proxies = [\"10.0.0.0/33\"]\n", []string{"trusted_proxies: \"10.0.0.0/33\" is neither"}},
		{"https without certificate", withListenerKeys(minimalHTTP, "protocol = \"https\""), []string{"listener[0].certificate: missing"}},
		{"h2c on https", withListenerKeys(minimalHTTP, "protocol = \"https\"\nh2c = true"), []string{"listener[0].h2c"}},
		{"http keys on tcp", withListenerKeys(minimalHTTP, "protocol = \"tcp\"\nmax_body_bytes = 10\nread_header_timeout = \"1s\""),
			[]string{"listener[0].max_body_bytes: is for http and https listeners, not tcp", "listener[0].read_header_timeout: is for http"}},
		{"PROXY header to an http pool", withPoolKeys(minimalHTTP, "proxy_protocol = \"v2\""), []string{"sends a PROXY header, which http listeners cannot"}},
		{"scheme", withPool("[pool.http]\nscheme = \"ftp\""), []string{"pool[0].http.scheme: must be http or https"}},
		{"ca_file over http", withPool("[pool.http]\nca_file = \"ca.pem\""), []string{"pool[0].http.ca_file: is for scheme = \"https\""}},
		{"retries", withPool("[pool.http]\nretries = 11"), []string{"pool[0].http.retries: must be 0 to 10"}},
		{"retry status", withPool("[pool.http]\nretry_statuses = [200]"), []string{"200 is not an error status"}},
		{"budget", withPool("[pool.http]\nretry_budget = 2.0"), []string{"pool[0].http.retry_budget: must be 0 to 1"}},
		{"sticky without key", withPool("[pool.sticky]\nmode = \"cookie\""), []string{"pool[0].sticky.key_file: missing"}},
		{"sticky mode", withPool("[pool.sticky]\nmode = \"magic\""), []string{"pool[0].sticky.mode: must be cookie, source_ip or header"}},
		{"sticky header", withPool("[pool.sticky]\nmode = \"header\""), []string{"pool[0].sticky.header"}},
		{"breaker ratio", withPool("[pool.breaker]\nfailure_ratio = 1.5"), []string{"pool[0].breaker.failure_ratio: must be 0 to 1"}},
		{"rate limit without rate", "[[rate_limit]]\nname = \"api\"\n" + minimalHTTP, []string{"fwd.toml:1: rate_limit[0].rate: must be positive"}},
		{"rate limit name", "[[rate_limit]]\nname = \"a:b\"\nrate = 1.0\n" + minimalHTTP, []string{"rate_limit[0].name: \"a:b\": up to 64 letters, digits, - _ and . only"}},
		{"rate limit key", "[[rate_limit]]\nname = \"api\"\nrate = 1.0\nkey = \"cookie\"\n" + minimalHTTP, []string{"rate_limit[0].key: must be ip, api_key, header or jwt_claim"}},
		{"jwt without secret", "[[rate_limit]]\nname = \"api\"\nrate = 1.0\nkey = \"jwt_claim\"\n[rate_limit.jwt]\nalgorithm = \"HS256\"\n" + minimalHTTP, []string{"rate_limit[0].jwt: HS256 verifies with secret_file"}},
		{"jwt on ip", "[[rate_limit]]\nname = \"api\"\nrate = 1.0\n[rate_limit.jwt]\nalgorithm = \"HS256\"\n" + minimalHTTP, []string{"rate_limit[0].jwt: is for key = \"jwt_claim\""}},
		{"guard ratio", withPool("[[pool]]\nname = \"v2\"\n[[pool.backend]]\naddress = \"10.0.0.2:80\"") + "[[listener.route]]\npool = \"web\"\n[listener.route.canary]\npool = \"v2\"\n[listener.route.canary.guard]\nmax_latency_ratio = 0.5\n",
			[]string{"listener[0].route[0].canary.guard.max_latency_ratio: must be at least 1"}},
		{"access log sample", "[access_log]\npath = \"a.log\"\nsample = 2.0\n" + minimalHTTP, []string{"fwd.toml:3: access_log.sample"}},
		{"unknown route key", withRoute("pool = \"web\"\nhots = [\"a\"]\n"), []string{"fwd.toml:13: listener[0].route[0].hots: unknown key"}},
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

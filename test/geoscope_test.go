package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// The ECS scope as clients see it: an operator's row inside a database
// network is never covered by the answer for the network around it, and
// answers hold as widely as they are the same. First straight from
// Meridian with dig, then through unbound's subnet cache, which is what a
// public resolver does with the scope.

// geoScopeConfig replaces the quickstart's GSLB part: a City database
// puts 10.64.0.0/18 in Japan and 10.64.64.0/18 in the United States,
// and a row sends 10.64.28.0/24, inside the Japanese network, to us-east.
func geoScopeConfig(t *testing.T) (edit func(string) string, prepare func(dir string)) {
	tokyo, boston := [2]float64{35.68, 139.69}, [2]float64{42.36, -71.06}
	prepare = func(dir string) {
		cityDB(t, filepath.Join(dir, "city.mmdb"), map[string][3]any{
			"10.64.0.0/18":     {"JP", "AS", tokyo},
			"10.64.64.0/18":    {"US", "NA", boston},
			"2001:db8:40::/42": {"JP", "AS", tokyo},
		})
	}
	edit = func(config string) string {
		static, _, ok := strings.Cut(config, "# --- GSLB")
		if !ok {
			t.Fatal("the quickstart has no GSLB part to replace")
		}
		static = replaceOnce(t, static, "[log]\n", "[log]\nquery_sample = 1.0\n")
		return static + `
[[geo.database]]
path = "city.mmdb"

[[geo.network]]
prefix = "10.64.28.0/24"
region = "us-east"

[[region]]
name = "us-east"
lat = 38.94
lon = -77.45

[[region]]
name = "ap-northeast"
lat = 35.68
lon = 139.69

[[record]]
name = "app.example.test"
policy = "geo"
[record.geo]
countries = { JP = ["ap-northeast"], US = ["us-east"] }
default = ["us-east"]
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.100"
[[record.pool]]
region = "ap-northeast"
check = { type = "none" }
[[record.pool.target]]
address = "203.0.113.100"
`
	}
	return edit, prepare
}

func TestGeoScopes(t *testing.T) {
	edit, prepare := geoScopeConfig(t)
	s := startQuickstartWith(t, edit, prepare)
	const us, ap = "192.0.2.100", "203.0.113.100"
	for _, tt := range []struct {
		name, subnet, answer, echo string
	}{
		// The row's own clients, and their neighbours: the answer for
		// 10.64.29.0/24 must not be cached for 10.64.28.0/23.
		{"the row", "10.64.28.0/24", us, "10.64.28.0/24/24"},
		{"beside the row", "10.64.29.0/24", ap, "10.64.29.0/24/24"},
		{"half of the database network without the row", "10.64.32.0/24", ap, "10.64.32.0/24/19"},
		// A /20 holding the row: no scope up to /20 is right, so the
		// answer says /21, longer than the source (RFC 7871 7.2.1).
		{"a source holding the row", "10.64.16.0/20", ap, "10.64.16.0/20/21"},
		{"the US network", "10.64.100.0/24", us, "10.64.100.0/24/18"},
		// Unlocated space gets the default order, us-east, as far as the
		// US network next to it: 10.64.64.0/18 and 10.64.128.0/17 merge
		// with it, no further.
		{"unlocated next to the US network", "10.64.200.0/24", us, "10.64.200.0/24/17"},
		{"IPv6", "2001:db8:40::/48", ap, "2001:db8:40::/48/42"},
		{"IPv4-mapped IPv6", "::ffff:10.64.29.0/120", ap, "::ffff:10.64.29.0/120/120"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.dig(t, "+norec", "+subnet="+tt.subnet, "app.example.test", "A")
			if got := addresses(r); len(got) != 1 || got[0] != tt.answer {
				t.Errorf("answer %v, want %s\n%s", got, tt.answer, r.out)
			}
			if got := clientSubnets(r); len(got) != 1 || got[0] != tt.echo {
				t.Errorf("CLIENT-SUBNET %v, want %s\n%s", got, tt.echo, r.out)
			}
		})
	}
}

// TestGeoScopesThroughUnbound asks unbound, with its subnet cache, for the
// answers of neighbouring subnets: the row's clients get their own answer
// although a neighbour's is cached, and a subnet inside a cached scope is
// answered from the cache without asking Meridian.
func TestGeoScopesThroughUnbound(t *testing.T) {
	if _, err := exec.LookPath("unbound"); err != nil {
		t.Skip("unbound is not installed (.ci/run installs it)")
	}
	edit, prepare := geoScopeConfig(t)
	s := startQuickstartWith(t, edit, prepare)
	resolver := startUnbound(t, s.port)
	const us, ap = "192.0.2.100", "203.0.113.100"
	asked := func(subnet string) int { // decisions Meridian logged for subnet
		n := 0
		for _, e := range s.logsWithMsg("query") {
			if e.str("ecs") == subnet {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		subnet, answer string
		fromCache      bool
	}{
		{"10.64.29.0/24", ap, false},
		{"10.64.28.0/24", us, false}, // not the neighbour's cached answer
		{"10.64.32.0/24", ap, false}, // cached for 10.64.32.0/19
		{"10.64.40.0/24", ap, true},
		{"10.64.63.0/24", ap, true},
		{"10.64.28.0/24", us, true},
	} {
		before := asked(tt.subnet)
		out := resolver.dig(t, "+subnet="+tt.subnet, "app.example.test", "A")
		if got := addresses(out); len(got) != 1 || got[0] != tt.answer {
			t.Fatalf("client %s: unbound answered %v, want %s\n%s", tt.subnet, got, tt.answer, out.out)
		}
		if got := asked(tt.subnet) - before; tt.fromCache != (got == 0) {
			t.Errorf("client %s: Meridian was asked %d times, want from the cache: %v", tt.subnet, got, tt.fromCache)
		}
	}
}

// unbound is a resolver started for a test.
type unbound struct{ port int }

// startUnbound runs unbound on loopback with a stub zone for example.test
// pointing at Meridian, its subnet cache on, sending the client's subnet
// (from the client's own ECS option) to Meridian.
func startUnbound(t *testing.T, meridianPort int) *unbound {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`server:
	interface: 127.0.0.1@%d
	port: %d
	directory: "%s"
	chroot: ""
	username: ""
	pidfile: ""
	use-syslog: no
	logfile: ""
	do-daemonize: no
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	local-zone: "test." nodefault
	module-config: "subnetcache iterator"
	send-client-subnet: 127.0.0.1
	client-subnet-always-forward: yes
	max-client-subnet-ipv4: 24
	qname-minimisation: no
	prefetch: no
stub-zone:
	name: "example.test"
	stub-addr: 127.0.0.1@%d
`, port, port, dir, meridianPort)
	path := filepath.Join(dir, "unbound.conf")
	writeFile(t, path, conf)
	if out, err := exec.Command("unbound-checkconf", path).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "unbound", "-d", "-c", path)
	var logs testkit.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("unbound output:\n%s", logs.String())
		}
	})
	u := &unbound{port: port}
	deadline := time.Now().Add(readyTimeout)
	for {
		if out, _, err := u.run(t, "+time=1", "+tries=1", "example.test", "SOA"); err == nil && parseDig(out).status == "NOERROR" {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not answer within %v:\n%s", readyTimeout, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *unbound) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runDigAt(u.port, args...)
}

func (u *unbound) dig(t *testing.T, args ...string) *digReply {
	t.Helper()
	out, errOut, err := u.run(t, args...)
	if err != nil {
		t.Fatalf("dig @unbound %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return parseDig(out)
}

package dnsfront

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/miekg/dns"
)

// policyConfig is a zone with two regions whose pools answer one address
// each; the record's policy lines are appended per test. Clients in
// 198.51.100.0/24 are in Paris, those in 192.0.2.0/24 in Boston.
const policyConfig = `
[[zone]]
name = "example.test"
records = ["@ SOA ns1 h 1 2 3 4 60", "@ NS ns1", "ns1 A 192.0.2.53"]

[[region]]
name = "us"
lat = 38.94
lon = -77.45

[[region]]
name = "eu"
lat = 53.35
lon = -6.26

[[geo.network]]
prefix = "198.51.100.0/24"
country = "FR"
lat = 48.86
lon = 2.35

[[geo.network]]
prefix = "192.0.2.0/24"
country = "US"
lat = 42.36
lon = -71.06

[[record]]
name = "app.example.test"
ttl = 30
`

const policyPools = `
[[record.pool]]
region = "us"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.100"
[[record.pool.target]]
address = "192.0.2.101"

[[record.pool]]
region = "eu"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.100"
`

// policyServer serves policyConfig with the given record lines on a real
// UDP socket.
func policyServer(t *testing.T, record string, health gslb.HealthView) (string, *gslb.Engine) {
	t.Helper()
	cfg, err := config.Parse("policy.toml", []byte(policyConfig+record+policyPools))
	if err != nil {
		t.Fatal(err)
	}
	h, e := handlerFor(t, cfg, health)
	srv := NewServer(Listen{Addrs: []string{"127.0.0.1:0"}, TCP: tcpLimits(TCPLimits{Idle: time.Second, MaxConns: 4, MaxQueries: 10})}, h, discard())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.UDPAddrs()[0].String(), e
}

// askFrom queries app.example.test A over UDP with a Client Subnet and
// returns the addresses and the ECS scope of the reply.
func askFrom(t *testing.T, addr, subnet string) ([]string, int) {
	t.Helper()
	m, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(withECS("app.example.test.", dns.TypeA, subnet), addr)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
		t.Fatalf("rcode %s aa %v", dns.RcodeToString[m.Rcode], m.Authoritative)
	}
	var out []string
	for _, rr := range m.Answer {
		out = append(out, rr.(*dns.A).A.String())
	}
	ecs := replyECS(m)
	if ecs == nil {
		t.Fatal("no ECS in the reply")
	}
	return out, int(ecs.SourceScope)
}

// TestPoliciesOverUDP runs each region and target policy through a real
// server and DNS client.
func TestPoliciesOverUDP(t *testing.T) {
	us := []string{"192.0.2.100", "192.0.2.101"}
	eu := []string{"198.51.100.100"}
	tests := []struct {
		name          string
		record        string
		setup         func(*gslb.HealthMap)
		paris, boston []string
		// ECS scopes of the answers: Boston gets the order of every
		// unlocated client around it, which holds up to 192.0.0.0/6.
		scope, bostonScope int
	}{
		{"failover", `policy = "failover"`, nil, us, us, 0, 0},
		{"failover, first pool down", `policy = "failover"`, func(h *gslb.HealthMap) {
			h.Set("us/192.0.2.100", gslb.Down)
			h.Set("us/192.0.2.101", gslb.Down)
		}, eu, eu, 0, 0},
		{"geo by country", "policy = \"geo\"\n[record.geo]\ncountries = { FR = [\"eu\"] }\ndefault = [\"us\"]", nil, eu, us, 24, 6},
		{"proximity", `policy = "proximity"`, nil, eu, us, 24, 6},
		{"latency: measured times win over distance", `policy = "latency"`, func(h *gslb.HealthMap) {
			h.SetRTT("us", 5*time.Millisecond)
			h.SetRTT("eu", 90*time.Millisecond)
		}, us, us, 0, 0},
		{"multivalue capped at one", "policy = \"failover\"\nmax_answers = 1", nil, us[:1], us[:1], 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			health := gslb.NewHealthMap()
			if tt.setup != nil {
				tt.setup(health)
			}
			addr, _ := policyServer(t, tt.record, health)
			for _, c := range []struct {
				subnet string
				want   []string
				scope  int
			}{{"198.51.100.0/24", tt.paris, tt.scope}, {"192.0.2.0/24", tt.boston, cmp.Or(tt.bostonScope, tt.scope)}} {
				got, scope := askFrom(t, addr, c.subnet)
				if !slices.Equal(got, c.want) || scope != c.scope {
					t.Errorf("client %s: %v scope %d, want %v scope %d", c.subnet, got, scope, c.want, c.scope)
				}
			}
		})
	}
}

// TestWeightedOverUDP: the stable policy gives one subnet one answer, with
// the hashed /24 as scope; random choices stay within the targets.
func TestWeightedOverUDP(t *testing.T) {
	addr, _ := policyServer(t, "policy = \"weighted-stable\"\nselect = \"weighted-stable\"", gslb.NewHealthMap())
	first, scope := askFrom(t, addr, "198.51.100.0/24")
	for range 10 {
		again, s := askFrom(t, addr, "198.51.100.0/24")
		if !slices.Equal(again, first) || s != 24 || scope != 24 {
			t.Fatalf("stable answers differ: %v then %v (scopes %d %d)", first, again, scope, s)
		}
	}
	addr, _ = policyServer(t, "policy = \"weighted\"\nselect = \"weighted\"", gslb.NewHealthMap())
	seen := map[string]bool{}
	for range 60 {
		got, _ := askFrom(t, addr, "192.0.2.0/24")
		if len(got) != 1 {
			t.Fatalf("want one address, got %v", got)
		}
		seen[got[0]] = true
	}
	for a := range seen {
		if !slices.Contains([]string{"192.0.2.100", "192.0.2.101", "198.51.100.100"}, a) {
			t.Fatalf("answer %s is no target", a)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("60 weighted random answers all %v", seen)
	}
}

// TestDrainOverUDP: a drained region is skipped whatever its health, and
// comes back when restored.
func TestDrainOverUDP(t *testing.T) {
	addr, e := policyServer(t, `policy = "proximity"`, gslb.NewHealthMap())
	if got, _ := askFrom(t, addr, "198.51.100.0/24"); !slices.Equal(got, []string{"198.51.100.100"}) {
		t.Fatalf("before drain: %v", got)
	}
	if err := e.DrainRegion("eu", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := askFrom(t, addr, "198.51.100.0/24"); !slices.Equal(got, []string{"192.0.2.100", "192.0.2.101"}) {
		t.Fatalf("eu drained: %v", got)
	}
	if err := e.DrainTarget("us/192.0.2.100", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := askFrom(t, addr, "198.51.100.0/24"); !slices.Equal(got, []string{"192.0.2.101"}) {
		t.Fatalf("eu and one us target drained: %v", got)
	}
	if err := e.DrainRegion("eu", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := askFrom(t, addr, "198.51.100.0/24"); !slices.Equal(got, []string{"198.51.100.100"}) {
		t.Fatalf("restored: %v", got)
	}
}

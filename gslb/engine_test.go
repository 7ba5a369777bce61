package gslb

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Real coordinates of the quickstart's regions.
var (
	usEast = &Region{Name: "us-east", Lat: 38.9, Lon: -77.4, Continent: "NA"}      // Ashburn
	euWest = &Region{Name: "eu-west", Lat: 53.3, Lon: -6.3, Continent: "EU"}       // Dublin
	apNE   = &Region{Name: "ap-northeast", Lat: 35.7, Lon: 139.7, Continent: "AS"} // Tokyo
)

func pool(name string, r *Region, weight uint32, minHealthy int, addrs ...string) *Pool {
	p := &Pool{Name: name, Region: r, Weight: weight, MinHealthy: minHealthy}
	for _, a := range addrs {
		p.Targets = append(p.Targets, Target{ID: name + "/" + a, Addr: netip.MustParseAddr(a), Weight: 1})
	}
	return p
}

// world is a record over three regions with one pool each.
func world(regions RegionPolicy, targets TargetPolicy) *Record {
	return &Record{
		Name: "app.example.test.", Type: dns.TypeA, TTL: 60, FallbackTTL: 20,
		Regions: regions, Targets: targets,
		Pools: []*Pool{
			pool("use", usEast, 1, 1, "192.0.2.1", "192.0.2.2"),
			pool("euw", euWest, 1, 1, "198.51.100.1", "198.51.100.2"),
			pool("apne", apNE, 1, 1, "203.0.113.1"),
		},
	}
}

func newEngine(t testing.TB, h HealthView, recs ...*Record) *Engine {
	t.Helper()
	e, err := New(recs, h, Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func addrs(d Decision) []string {
	var out []string
	for _, a := range d.Addrs {
		out = append(out, a.String())
	}
	return out
}

func client(addr string, prefix int) *Client {
	a := netip.MustParseAddr(addr)
	return &Client{Addr: a, Prefix: prefix}
}

func located(addr string, prefix int, country, continent string, lat, lon float64, netBits int) *Client {
	c := client(addr, prefix)
	c.Located, c.Country, c.Continent, c.Lat, c.Lon, c.HasCoords, c.NetworkBits = true, country, continent, lat, lon, true, netBits
	return c
}

var (
	paris  = located("198.51.100.7", 24, "FR", "EU", 48.86, 2.35, 16)
	tokyo  = located("203.0.113.9", 24, "JP", "AS", 35.68, 139.69, 20)
	boston = located("192.0.2.77", 24, "US", "NA", 42.36, -71.06, 12)
)

func TestFailover(t *testing.T) {
	tests := []struct {
		name    string
		down    []string
		fail    FailMode
		outcome Outcome
		want    []string
		ttl     uint32
	}{
		{"first pool healthy", nil, FailOpen, Answered, []string{"192.0.2.1", "192.0.2.2"}, 60},
		{"one target of first pool down", []string{"use/192.0.2.1"}, FailOpen, Answered, []string{"192.0.2.2"}, 60},
		{"first pool down: second, shorter TTL", []string{"use/192.0.2.1", "use/192.0.2.2"}, FailOpen, Fallback, []string{"198.51.100.1", "198.51.100.2"}, 20},
		{"two pools down: third", []string{"use/192.0.2.1", "use/192.0.2.2", "euw/198.51.100.1", "euw/198.51.100.2"}, FailOpen, Fallback, []string{"203.0.113.1"}, 20},
		{"all down, fail open: first pool's targets", allTargets(), FailOpen, Opened, []string{"192.0.2.1", "192.0.2.2"}, 20},
		{"all down, fail closed servfail", allTargets(), FailServfail, Servfail, nil, 60},
		{"all down, fail closed nodata", allTargets(), FailNoData, NoData, nil, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealthMap()
			for _, id := range tt.down {
				h.Set(id, Down)
			}
			r := world(Failover{}, All{})
			r.Fail = tt.fail
			e := newEngine(t, h, r)
			d := e.Decide(r, boston, nil)
			if d.Outcome != tt.outcome || !slices.Equal(addrs(d), tt.want) || d.TTL != tt.ttl || d.Scope != 0 {
				t.Fatalf("got %s %v ttl %d scope %d; want %s %v ttl %d scope 0", d.Outcome, addrs(d), d.TTL, d.Scope, tt.outcome, tt.want, tt.ttl)
			}
		})
	}
}

func allTargets() []string {
	return []string{"use/192.0.2.1", "use/192.0.2.2", "euw/198.51.100.1", "euw/198.51.100.2", "apne/203.0.113.1"}
}

func TestMinHealthy(t *testing.T) {
	h := NewHealthMap()
	r := world(Failover{}, All{})
	r.Pools[0].MinHealthy = 2
	e := newEngine(t, h, r)
	if d := e.Decide(r, boston, nil); d.Pool.Name != "use" {
		t.Fatalf("both up: pool %s", d.Pool.Name)
	}
	h.Set("use/192.0.2.1", Down)
	e.Refresh()
	if d := e.Decide(r, boston, nil); d.Pool.Name != "euw" || d.Outcome != Fallback {
		t.Fatalf("one of two up with min_healthy 2: %s from %s, want fallback to euw", d.Outcome, d.Pool.Name)
	}
}

func TestUnknownHealth(t *testing.T) {
	h := NewHealthMap() // no results yet
	r := world(Failover{}, All{})
	for _, up := range []bool{true, false} {
		e, err := New([]*Record{r}, h, Options{UnknownIsUp: up})
		if err != nil {
			t.Fatal(err)
		}
		d := e.Decide(r, boston, nil)
		want := Answered
		if !up {
			want = Opened // nothing counts as healthy; the record fails open
		}
		if d.Outcome != want || d.Pool.Name != "use" {
			t.Errorf("UnknownIsUp=%v: %s from %s, want %s from use", up, d.Outcome, d.Pool.Name, want)
		}
	}
}

func TestGeo(t *testing.T) {
	g := &Geo{
		Subdivisions: map[string][]string{"US-CA": {"ap-northeast", "us-east"}},
		Countries:    map[string][]string{"FR": {"eu-west"}, "JP": {"ap-northeast"}},
		Continents:   map[string][]string{"EU": {"eu-west", "us-east"}},
		Default:      []string{"us-east"},
	}
	cal := located("192.0.2.200", 24, "US", "NA", 37.4, -122.1, 18)
	cal.Subdivision = "CA"
	berlin := located("198.51.100.99", 24, "DE", "EU", 52.5, 13.4, 17)
	cidr := client("10.1.2.3", 24)
	cidr.Located, cidr.Region, cidr.NetworkBits = true, "ap-northeast", 8
	nowhere := client("100.64.0.1", 24)
	tests := []struct {
		name   string
		c      *Client
		down   []string
		region string
		scope  int
	}{
		{"country", paris, nil, "eu-west", 16},
		{"subdivision before country", cal, nil, "ap-northeast", 18},
		{"continent when the country is not mapped", berlin, nil, "eu-west", 17},
		{"CIDR row naming a region", cidr, nil, "ap-northeast", 8},
		{"unlocated: default, scope is the client's prefix", nowhere, nil, "us-east", 24},
		{"mapped region down: next in the list", berlin, []string{"euw/198.51.100.1", "euw/198.51.100.2"}, "us-east", 17},
		{"list exhausted: default, then the rest", tokyo, []string{"apne/203.0.113.1"}, "us-east", 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealthMap()
			for _, id := range tt.down {
				h.Set(id, Down)
			}
			r := world(g, All{})
			e := newEngine(t, h, r)
			d := e.Decide(r, tt.c, nil)
			if d.Pool.Region.Name != tt.region || d.Scope != tt.scope {
				t.Fatalf("region %s scope %d, want %s scope %d", d.Pool.Region.Name, d.Scope, tt.region, tt.scope)
			}
		})
	}
}

// TestGeoFallsBackToNearest: with no list naming them, the remaining
// regions are tried nearest first.
func TestGeoFallsBackToNearest(t *testing.T) {
	g := &Geo{Countries: map[string][]string{"FR": {"eu-west"}}}
	h := NewHealthMap()
	h.Set("euw/198.51.100.1", Down)
	h.Set("euw/198.51.100.2", Down)
	r := world(g, All{})
	// Configured order puts us-east before ap-northeast; from Tokyo's
	// coordinates the nearest is ap-northeast.
	e := newEngine(t, h, r)
	frInTokyo := located("198.51.100.9", 24, "FR", "EU", 35.6, 139.7, 16)
	if d := e.Decide(r, frInTokyo, nil); d.Pool.Region.Name != "ap-northeast" || d.Outcome != Fallback {
		t.Fatalf("%s from %s, want fallback to the nearest, ap-northeast", d.Outcome, d.Pool.Region.Name)
	}
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "us-east" {
		t.Fatalf("from Paris: %s, want us-east (nearer than Tokyo)", d.Pool.Region.Name)
	}
}

func TestProximity(t *testing.T) {
	tests := []struct {
		name   string
		c      *Client
		bias   float64 // on ap-northeast
		down   []string
		region string
	}{
		{"Paris: Dublin", paris, 0, nil, "eu-west"},
		{"Tokyo: Tokyo", tokyo, 0, nil, "ap-northeast"},
		{"Boston: Ashburn", boston, 0, nil, "us-east"},
		{"Dublin down: Paris goes to the next nearest, Ashburn", paris, 0, []string{"euw/198.51.100.1", "euw/198.51.100.2"}, "us-east"},
		// Paris-Dublin is ~780 km, Paris-Tokyo ~9,700 km: a bias of 95
		// makes Tokyo's distance ~485 km.
		{"bias pulls Paris to Tokyo", paris, 95, nil, "ap-northeast"},
		{"no coordinates: configured order", client("192.0.2.1", 24), 0, nil, "us-east"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealthMap()
			for _, id := range tt.down {
				h.Set(id, Down)
			}
			r := world(Proximity{}, All{})
			ap := *apNE
			ap.Bias = tt.bias
			r.Pools[2].Region = &ap
			e := newEngine(t, h, r)
			if d := e.Decide(r, tt.c, nil); d.Pool.Region.Name != tt.region {
				t.Fatalf("region %s, want %s", d.Pool.Region.Name, tt.region)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	// Paris to Tokyo is 9,713 km on the great circle.
	if d := distanceKm(48.8566, 2.3522, 35.6762, 139.6503); math.Abs(d-9713) > 15 {
		t.Fatalf("Paris-Tokyo %0.f km", d)
	}
	if d := distanceKm(10, 20, 10, 20); d != 0 {
		t.Fatalf("same point %f", d)
	}
}

func TestLatency(t *testing.T) {
	h := NewHealthMap()
	r := world(Latency{}, All{})
	e := newEngine(t, h, r)
	h.OnPublish(e.Refresh) // as the DNS node wires it: times reach the plan
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "eu-west" || d.Scope != 16 {
		t.Fatalf("no measurements: %s scope %d, want proximity's eu-west scope 16", d.Pool.Region.Name, d.Scope)
	}
	h.SetRTT("us-east", 30*time.Millisecond)
	h.SetRTT("eu-west", 80*time.Millisecond)
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "us-east" {
		t.Fatalf("partial measurements: %s, want the measured fastest us-east", d.Pool.Region.Name)
	}
	h.SetRTT("ap-northeast", 10*time.Millisecond)
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "ap-northeast" || d.Scope != 0 {
		t.Fatalf("all measured: %s scope %d, want ap-northeast scope 0", d.Pool.Region.Name, d.Scope)
	}
}

func TestLatencyFromNearestVantage(t *testing.T) {
	h := NewHealthMap()
	r := world(Latency{}, All{})
	e := newEngine(t, h, r)
	h.OnPublish(e.Refresh)
	// The median says us-east for everyone; the vantage in Frankfurt sees
	// eu-west fastest, the one in Osaka ap-northeast.
	h.SetRTT("us-east", 10*time.Millisecond)
	h.SetRTT("eu-west", 50*time.Millisecond)
	h.SetRTT("ap-northeast", 90*time.Millisecond)
	h.SetVantageRTTs([]VantageRTT{
		{Name: "fra", Lat: 50.1, Lon: 8.7, RTT: map[string]time.Duration{"us-east": 90 * time.Millisecond, "eu-west": 5 * time.Millisecond, "ap-northeast": 240 * time.Millisecond}},
		{Name: "osa", Lat: 34.7, Lon: 135.5, RTT: map[string]time.Duration{"us-east": 150 * time.Millisecond, "eu-west": 230 * time.Millisecond, "ap-northeast": 8 * time.Millisecond}},
		{Name: "nowhere", RTT: map[string]time.Duration{"us-east": time.Millisecond}}, // no coordinates: never nearest
	})
	tests := []struct {
		who  *Client
		want string
	}{
		{paris, "eu-west"},
		{tokyo, "ap-northeast"},
		{client("192.0.2.1", 32), "us-east"}, // not located: the median
	}
	for _, tt := range tests {
		d := e.Decide(r, tt.who, nil)
		if d.Pool.Region.Name != tt.want {
			t.Errorf("client %v: %s, want %s", tt.who.Addr, d.Pool.Region.Name, tt.want)
		}
		if tt.who.HasCoords && d.Scope == 0 {
			t.Errorf("client %v: scope 0, but the answer depends on where the client is", tt.who.Addr)
		}
	}
}

func TestWeightedPoolsDistribution(t *testing.T) {
	r := world(WeightedPools{}, All{})
	r.Pools[0].Weight, r.Pools[1].Weight, r.Pools[2].Weight = 70, 20, 10
	e := newEngine(t, NewHealthMap(), r)
	const n = 20000
	got := map[string]int{}
	for range n {
		got[e.Decide(r, boston, nil).Pool.Name]++
	}
	for name, want := range map[string]float64{"use": .70, "euw": .20, "apne": .10} {
		if share := float64(got[name]) / n; math.Abs(share-want) > 0.02 {
			t.Errorf("pool %s: share %.3f, want %.2f±0.02", name, share, want)
		}
	}
}

func TestWeightedPoolsStable(t *testing.T) {
	r := world(WeightedPools{Stable: true}, All{})
	r.Pools[0].Weight, r.Pools[1].Weight, r.Pools[2].Weight = 50, 30, 20
	e := newEngine(t, NewHealthMap(), r)
	before := map[string]string{}
	got := map[string]int{}
	for i := range 4000 {
		c := client(fmt.Sprintf("10.%d.%d.9", i/256, i%256), 32)
		d := e.Decide(r, c, nil)
		if again := e.Decide(r, c, nil); again.Pool != d.Pool {
			t.Fatal("stable choice changed between two queries")
		}
		if d.Scope != 24 {
			t.Fatalf("scope %d, want the hashed /24", d.Scope)
		}
		before[c.Addr.String()] = d.Pool.Name
		got[d.Pool.Name]++
	}
	for name, want := range map[string]float64{"use": .5, "euw": .3, "apne": .2} {
		if share := float64(got[name]) / 4000; math.Abs(share-want) > 0.03 {
			t.Errorf("pool %s: share %.3f, want %.2f±0.03", name, share, want)
		}
	}
	// A resolver sending a /16 gets the answer of the /16's first /24,
	// scoped /24: the other /24s of the /16 may hash elsewhere (RFC 7871
	// allows a scope past the source prefix).
	for i := range 64 {
		wide := e.Decide(r, client(fmt.Sprintf("10.%d.0.0", i), 16), nil)
		if narrow := e.Decide(r, client(fmt.Sprintf("10.%d.0.0", i), 24), nil); wide.Scope != 24 || wide.Pool != narrow.Pool {
			t.Fatalf("10.%d.0.0/16: %s scope /%d; its first /24 gets %s", i, wide.Pool.Name, wide.Scope, narrow.Pool.Name)
		}
	}
	// Taking euw's weight to 0 at runtime moves euw's clients, and only them.
	zero := uint32(0)
	if old, err := e.SetPoolWeight(r.Name, r.Type, "euw", &zero); err != nil || old != 30 {
		t.Fatalf("SetPoolWeight: old %d, %v", old, err)
	}
	moved, left := 0, 0
	for addr, was := range before {
		now := e.Decide(r, client(addr, 32), nil).Pool.Name
		switch {
		case was == "euw" && now != "euw":
			left++
		case was != "euw" && now != was:
			moved++
		}
	}
	if moved != 0 || left != got["euw"] {
		t.Fatalf("euw at weight 0: %d of its %d clients left, %d others moved", left, got["euw"], moved)
	}
	// Rollback restores every client's pool.
	if _, err := e.SetPoolWeight(r.Name, r.Type, "euw", nil); err != nil {
		t.Fatal(err)
	}
	for addr, was := range before {
		if now := e.Decide(r, client(addr, 32), nil).Pool.Name; now != was {
			t.Fatalf("after rollback %s went to %s, was %s", addr, now, was)
		}
	}
}

// TestCanaryShift moves a weighted record's traffic between two pools in
// steps at runtime, as a canary rollout does, and rolls back.
func TestCanaryShift(t *testing.T) {
	r := world(WeightedPools{}, All{})
	r.Pools = r.Pools[:2] // "use" is the stable pool, "euw" the canary
	r.Pools[0].Weight, r.Pools[1].Weight = 100, 0
	e := newEngine(t, NewHealthMap(), r)
	share := func() float64 {
		n := 0
		for range 10000 {
			if e.Decide(r, boston, nil).Pool.Name == "euw" {
				n++
			}
		}
		return float64(n) / 10000
	}
	if s := share(); s != 0 {
		t.Fatalf("canary at 0: %.3f", s)
	}
	for _, pct := range []uint32{5, 10, 25, 50} {
		canary, stable := pct, 100-pct
		if _, err := e.SetPoolWeight(r.Name, r.Type, "euw", &canary); err != nil {
			t.Fatal(err)
		}
		if _, err := e.SetPoolWeight(r.Name, r.Type, "use", &stable); err != nil {
			t.Fatal(err)
		}
		if s := share(); math.Abs(s-float64(pct)/100) > 0.02 {
			t.Errorf("canary at %d%%: share %.3f", pct, s)
		}
	}
	for _, p := range []string{"euw", "use"} {
		if _, err := e.SetPoolWeight(r.Name, r.Type, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s := share(); s != 0 {
		t.Fatalf("after rollback: %.3f", s)
	}
	if _, err := e.SetPoolWeight(r.Name, r.Type, "nope", nil); !errors.Is(err, ErrUnknownPool) {
		t.Errorf("unknown pool: %v", err)
	}
	if _, err := e.SetPoolWeight("x.", r.Type, "use", nil); !errors.Is(err, ErrUnknownRecord) {
		t.Errorf("unknown record: %v", err)
	}
}

func TestTargetWeightOverride(t *testing.T) {
	r := world(Failover{}, WeightedTargets{Count: 1})
	e := newEngine(t, NewHealthMap(), r)
	zero := uint32(0)
	if _, err := e.SetTargetWeight("use/192.0.2.1", &zero); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		if got := addrs(e.Decide(r, boston, nil)); got[0] != "192.0.2.2" {
			t.Fatalf("weight 0 target answered: %v", got)
		}
	}
	if old, err := e.SetTargetWeight("use/192.0.2.1", nil); err != nil || old != 0 {
		t.Fatalf("restore: old %d %v", old, err)
	}
	if _, err := e.SetTargetWeight("nope", nil); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("unknown target: %v", err)
	}
}

func TestTargetPolicies(t *testing.T) {
	p := &Pool{Name: "p", Region: usEast, MinHealthy: 1}
	for i, w := range []uint32{10, 30, 60} {
		p.Targets = append(p.Targets, Target{ID: fmt.Sprint("t", i), Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Weight: w})
	}
	mk := func(tp TargetPolicy) (*Engine, *Record) {
		r := &Record{Name: "x.", Type: dns.TypeA, TTL: 60, Regions: Failover{}, Targets: tp, Pools: []*Pool{p}}
		return newEngine(t, NewHealthMap(), r), r
	}
	t.Run("all in weight order", func(t *testing.T) {
		e, r := mk(All{})
		if got := addrs(e.Decide(r, boston, nil)); !slices.Equal(got, []string{"192.0.2.3", "192.0.2.2", "192.0.2.1"}) {
			t.Fatal(got)
		}
	})
	t.Run("all up to 2", func(t *testing.T) {
		e, r := mk(All{Max: 2})
		if got := addrs(e.Decide(r, boston, nil)); !slices.Equal(got, []string{"192.0.2.3", "192.0.2.2"}) {
			t.Fatal(got)
		}
	})
	t.Run("weighted random one", func(t *testing.T) {
		e, r := mk(WeightedTargets{Count: 1})
		got := map[string]int{}
		const n = 20000
		for range n {
			got[addrs(e.Decide(r, boston, nil))[0]]++
		}
		for a, want := range map[string]float64{"192.0.2.1": .1, "192.0.2.2": .3, "192.0.2.3": .6} {
			if share := float64(got[a]) / n; math.Abs(share-want) > 0.02 {
				t.Errorf("%s: share %.3f, want %.2f±0.02", a, share, want)
			}
		}
	})
	t.Run("weighted two distinct", func(t *testing.T) {
		e, r := mk(WeightedTargets{Count: 2})
		for range 100 {
			got := addrs(e.Decide(r, boston, nil))
			if len(got) != 2 || got[0] == got[1] {
				t.Fatalf("want two distinct, got %v", got)
			}
		}
	})
	t.Run("weighted stable per subnet", func(t *testing.T) {
		e, r := mk(WeightedTargets{Count: 1, Stable: true})
		a := addrs(e.Decide(r, client("198.51.100.7", 32), nil))
		b := addrs(e.Decide(r, client("198.51.100.200", 32), nil))
		if !slices.Equal(a, b) {
			t.Fatalf("same /24, different answers %v %v", a, b)
		}
	})
}

func TestDrain(t *testing.T) {
	r := world(Proximity{}, All{})
	e := newEngine(t, NewHealthMap(), r)
	if err := e.DrainRegion("eu-west", true); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "us-east" || d.Outcome != Fallback {
		t.Fatalf("eu-west drained: %s from %s", d.Outcome, d.Pool.Region.Name)
	}
	if err := e.DrainTarget("use/192.0.2.1", true); err != nil {
		t.Fatal(err)
	}
	if got := addrs(e.Decide(r, paris, nil)); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("target drained: %v", got)
	}
	if err := e.DrainRegion("eu-west", false); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(r, paris, nil); d.Pool.Region.Name != "eu-west" {
		t.Fatalf("restored: %s", d.Pool.Region.Name)
	}
	if err := e.DrainRegion("mars", true); !errors.Is(err, ErrUnknownRegion) {
		t.Fatalf("unknown region: %v", err)
	}
	if err := e.DrainTarget("nope", true); !errors.Is(err, ErrUnknownTarget) {
		t.Fatalf("unknown target: %v", err)
	}
	// Drained everywhere, failing open still does not answer drained targets.
	for _, reg := range []string{"us-east", "eu-west", "ap-northeast"} {
		if err := e.DrainRegion(reg, true); err != nil {
			t.Fatal(err)
		}
	}
	if d := e.Decide(r, paris, nil); d.Outcome != NoData || len(d.Addrs) != 0 {
		t.Fatalf("all drained: %s %v", d.Outcome, addrs(d))
	}
}

func TestExplain(t *testing.T) {
	h := NewHealthMap()
	h.Set("euw/198.51.100.1", Down)
	h.Set("euw/198.51.100.2", Down)
	r := world(Proximity{}, All{})
	e := newEngine(t, h, r)
	ex := e.Explain(r, paris)
	if ex.Policy != "proximity" || ex.Outcome != "fallback" || ex.Region != "us-east" || ex.TTL != 20 {
		t.Fatalf("explanation %+v", ex)
	}
	if len(ex.Candidates) != 3 || ex.Candidates[0].Region != "eu-west" || ex.Candidates[0].Eligible || ex.Candidates[0].Healthy != 0 || !ex.Candidates[1].Eligible {
		t.Fatalf("candidates %+v", ex.Candidates)
	}
	if d := ex.Candidates[0].DistanceKm; d < 700 || d > 850 {
		t.Fatalf("Paris-Dublin %.0f km", d)
	}
	if d := e.Decide(r, paris, nil); !slices.Equal(addrs(d), ex.Answer) {
		t.Fatalf("explain %v and decide %v differ", ex.Answer, addrs(d))
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	h := NewHealthMap()
	var s Scratch
	for _, r := range []*Record{world(Failover{}, All{}), world(Proximity{}, All{}), world(Latency{}, All{}),
		world(WeightedPools{Stable: true}, WeightedTargets{Count: 1, Stable: true})} {
		e := newEngine(t, h, r)
		if n := testing.AllocsPerRun(100, func() { e.Decide(r, paris, &s) }); n != 0 {
			t.Errorf("%s: %.0f allocations per decision", r.Regions.Name(), n)
		}
	}
}

package whatif

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

var (
	usEast = &gslb.Region{Name: "us-east", Lat: 38.9, Lon: -77.4, Continent: "NA"}
	euWest = &gslb.Region{Name: "eu-west", Lat: 53.3, Lon: -6.3, Continent: "EU"}
	apNE   = &gslb.Region{Name: "ap-northeast", Lat: 35.7, Lon: 139.7, Continent: "AS"}
)

func pool(name string, r *gslb.Region, weight uint32, addrs ...string) *gslb.Pool {
	p := &gslb.Pool{Name: name, Region: r, Weight: weight, MinHealthy: 1}
	for _, a := range addrs {
		p.Targets = append(p.Targets, gslb.Target{ID: r.Name + "/" + a, Addr: netip.MustParseAddr(a), Weight: 1})
	}
	return p
}

// fixture is the quickstart's shape: a geo record over three regions, a
// weighted canary in one, and a CIDR row per region plus one more.
func fixture(t testing.TB, fail gslb.FailMode) (*gslb.Engine, *geo.Index) {
	t.Helper()
	app := &gslb.Record{Name: "app.example.test.", Type: dns.TypeA, TTL: 30, FallbackTTL: 10, Fail: fail,
		Regions: &gslb.Geo{Default: []string{"us-east", "eu-west", "ap-northeast"}}, Targets: gslb.All{},
		Pools: []*gslb.Pool{
			pool("us-east", usEast, 1, "192.0.2.100", "192.0.2.101"),
			pool("eu-west", euWest, 1, "198.51.100.100"),
			pool("ap-northeast", apNE, 1, "203.0.113.100"),
		}}
	canary := &gslb.Record{Name: "canary.example.test.", Type: dns.TypeA, TTL: 30,
		Regions: gslb.WeightedPools{}, Targets: gslb.All{},
		Pools: []*gslb.Pool{pool("stable", usEast, 100, "192.0.2.110"), pool("canary", usEast, 0, "192.0.2.111")}}
	h := gslb.NewHealthMap()
	for _, r := range []*gslb.Record{app, canary} {
		for _, p := range r.Pools {
			for _, tg := range p.Targets {
				h.Set(tg.ID, gslb.Up)
			}
		}
	}
	e, err := gslb.New([]*gslb.Record{app, canary}, h, gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	rows := []geo.Row{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Location: geo.Location{Region: "us-east"}},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Location: geo.Location{Region: "eu-west"}},
		{Prefix: netip.MustParsePrefix("198.18.0.0/15"), Location: geo.Location{Region: "eu-west"}},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Location: geo.Location{Region: "ap-northeast"}},
	}
	table, err := geo.NewTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := geo.NewIndex(geo.Named{Name: "geo.network", Locator: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetGeo(idx); err != nil {
		t.Fatal(err)
	}
	return e, idx
}

// moves renders a record's moves as "from>to:clients[examples]".
func moves(rec RecordReport) []string {
	var out []string
	for _, m := range rec.Moves {
		out = append(out, fmt.Sprintf("%s>%s:%d%v", m.From, m.To, m.Clients, m.Sample))
	}
	return out
}

func shares(rec RecordReport) map[string][2]float64 {
	out := map[string][2]float64{}
	for _, s := range rec.Shares {
		out[s.Region] = [2]float64{s.Before, s.After}
	}
	return out
}

func TestSimulateMoves(t *testing.T) {
	tests := []struct {
		name      string
		fail      gslb.FailMode
		scenario  Scenario
		app       []string // moves of app.example.test
		canary    map[string][2]float64
		unhealthy *Unhealthy
	}{
		{name: "nothing changes", scenario: Scenario{}, canary: map[string][2]float64{"us-east": {1, 1}}},
		{name: "eu-west down moves its rows to the default's first", scenario: Scenario{Down: []string{"eu-west"}},
			app: []string{"eu-west>us-east (fallback):2[198.18.0.0/15 198.51.100.0/24]"}, canary: map[string][2]float64{"us-east": {1, 1}}},
		{name: "a drain moves them alike", scenario: Scenario{Drain: []string{"eu-west"}},
			app: []string{"eu-west>us-east (fallback):2[198.18.0.0/15 198.51.100.0/24]"}, canary: map[string][2]float64{"us-east": {1, 1}}},
		{name: "one target of two down moves nothing", scenario: Scenario{Down: []string{"us-east/192.0.2.100"}},
			canary: map[string][2]float64{"us-east": {1, 1}}},
		{name: "us-east and eu-west down: all to ap-northeast", scenario: Scenario{Down: []string{"us-east", "eu-west"}},
			app: []string{
				"eu-west>ap-northeast (fallback):2[198.18.0.0/15 198.51.100.0/24]",
				"us-east>ap-northeast (fallback):1[192.0.2.0/24]",
			},
			canary: map[string][2]float64{"us-east": {1, 1}, "us-east (fail-open)": {0, 0}}, unhealthy: &Unhealthy{Fail: "fail-open", TTL: 30, Clients: 1}},
		{name: "everything down fails open with the fallback TTL", scenario: Scenario{Down: []string{"us-east", "eu-west", "ap-northeast"}},
			app: []string{
				"eu-west>eu-west (fail-open):2[198.18.0.0/15 198.51.100.0/24]",
				"ap-northeast>ap-northeast (fail-open):1[203.0.113.0/24]",
				"us-east>us-east (fail-open):1[192.0.2.0/24]",
			},
			canary: map[string][2]float64{"us-east": {1, 1}}, unhealthy: &Unhealthy{Fail: "fail-open", TTL: 10, Clients: 4}},
		{name: "everything down, fail closed", fail: gslb.FailServfail, scenario: Scenario{Down: []string{"us-east", "eu-west", "ap-northeast"}},
			app: []string{
				"eu-west>servfail:2[198.18.0.0/15 198.51.100.0/24]",
				"ap-northeast>servfail:1[203.0.113.0/24]",
				"us-east>servfail:1[192.0.2.0/24]",
			},
			canary: map[string][2]float64{"us-east": {1, 1}}, unhealthy: &Unhealthy{Fail: "servfail", TTL: 30, Clients: 4}},
		{name: "canary weight shifts the share", scenario: Scenario{Weight: []string{"canary=100"}},
			canary: map[string][2]float64{"us-east": {1, 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, idx := fixture(t, tt.fail)
			rep, err := Simulate(e, tt.scenario, TableRows(idx), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Clients != 4 {
				t.Errorf("clients = %d, want the 4 rows", rep.Clients)
			}
			app := rep.Records[0]
			if got := moves(app); !slices.Equal(got, tt.app) {
				t.Errorf("app moves = %q, want %q", got, tt.app)
			}
			if tt.unhealthy != nil && tt.unhealthy.Clients == 4 {
				if app.Unhealthy == nil || *app.Unhealthy != *tt.unhealthy {
					t.Errorf("app unhealthy = %+v, want %+v", app.Unhealthy, tt.unhealthy)
				}
			} else if app.Unhealthy != nil {
				t.Errorf("app unhealthy = %+v, want none", app.Unhealthy)
			}
			if got := shares(rep.Records[1]); got["stable (us-east)"] != tt.canary["us-east"] {
				t.Errorf("canary shares = %v, want stable %v", got, tt.canary["us-east"])
			}
		})
	}
}

// The shares of the geo record follow its clients; a scenario changes
// nothing served.
func TestSimulateSharesAndLiveState(t *testing.T) {
	e, idx := fixture(t, gslb.FailOpen)
	c := gslb.Client{}
	e.Locate(&c, netip.MustParsePrefix("198.51.100.0/24"))
	rec := e.AllRecords()[0]
	before := e.Decide(rec, &c, nil).Pool.Region.Name
	rep, err := Simulate(e, Scenario{Down: []string{"eu-west"}, Drain: []string{"ap-northeast"}}, TableRows(idx), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{"us-east": {0.25, 1}, "eu-west": {0.5, 0}, "ap-northeast": {0.25, 0}}
	if got := shares(rep.Records[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("shares = %v, want %v", got, want)
	}
	e.Locate(&c, netip.MustParsePrefix("198.51.100.0/24"))
	if after := e.Decide(rec, &c, nil).Pool.Region.Name; after != before || after != "eu-west" {
		t.Errorf("the live engine answers %s after the simulation, %s before; want eu-west both", after, before)
	}
	if regions, _ := e.Drains(); len(regions) != 0 {
		t.Errorf("the live engine has drains %v after a simulation", regions)
	}
}

func TestWeightedShares(t *testing.T) {
	tests := []struct {
		scenario Scenario
		want     map[string][2]float64
	}{
		{Scenario{Weight: []string{"canary=100"}}, map[string][2]float64{"stable (us-east)": {1, 0.5}, "canary (us-east)": {0, 0.5}}},
		{Scenario{Weight: []string{"canary.example.test/A/canary=300", "stable=100"}}, map[string][2]float64{"stable (us-east)": {1, 0.25}, "canary (us-east)": {0, 0.75}}},
		{Scenario{Down: []string{"us-east/192.0.2.110"}}, map[string][2]float64{"stable (us-east)": {1, 0}, "canary (us-east)": {0, 1}}},
		{Scenario{Weight: []string{"us-east/192.0.2.110=0"}}, map[string][2]float64{"stable (us-east)": {1, 0}, "canary (us-east)": {0, 1}}},
	}
	for _, tt := range tests {
		e, idx := fixture(t, gslb.FailOpen)
		rep, err := Simulate(e, tt.scenario, TableRows(idx), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := shares(rep.Records[1]); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: canary shares = %v, want %v", tt.scenario.Describe(), got, tt.want)
		}
	}
	// Shares by pool weight, across regions: 3 to 1, then one region down.
	r := &gslb.Record{Name: "w.example.test.", Type: dns.TypeA, TTL: 30, Regions: gslb.WeightedPools{}, Targets: gslb.All{}}
	pools := []gslb.Candidate{{Pool: "us-east", Region: "us-east", Weight: 3, Eligible: true, Usable: 1}, {Pool: "eu-west", Region: "eu-west", Weight: 1, Eligible: true, Usable: 1}}
	if got, _ := weightedShares(r, pools); fmt.Sprint(got) != "map[eu-west:0.25 us-east:0.75]" {
		t.Errorf("3:1 shares = %v", got)
	}
	pools[0].Eligible = false
	if got, _ := weightedShares(r, pools); fmt.Sprint(got) != "map[eu-west:1]" {
		t.Errorf("shares with us-east out = %v", got)
	}
	pools[1].Eligible = false
	if got, u := weightedShares(r, pools); fmt.Sprint(got) != "map[us-east:1]" || u == nil || u.Fail != "fail-open" {
		t.Errorf("shares with both out = %v, %+v; want failing open to us-east", got, u)
	}
}

func TestScenarioErrors(t *testing.T) {
	tests := []struct {
		scenario Scenario
		is       error
		mentions []string
	}{
		{Scenario{Down: []string{"mars"}}, ErrUnknownName, []string{`"mars"`, "regions: ap-northeast, eu-west, us-east", "us-east/192.0.2.100"}},
		{Scenario{Drain: []string{"us-east/192.0.2.9"}}, ErrUnknownName, []string{"targets:"}},
		{Scenario{Weight: []string{"nope=3"}}, ErrUnknownName, []string{"pools:", "canary.example.test/A/canary"}},
		{Scenario{Weight: []string{"canary"}}, ErrBadScenario, []string{"POOL=N"}},
		{Scenario{Weight: []string{"canary=-1"}}, ErrBadScenario, []string{"0 to"}},
		{Scenario{Load: []string{"mars=50"}}, ErrUnknownName, []string{`no region "mars"`, "regions: ap-northeast, eu-west, us-east"}},
		{Scenario{Load: []string{"eu-west"}}, ErrBadScenario, []string{"REGION=PCT"}},
		{Scenario{Load: []string{"eu-west=lots"}}, ErrBadScenario, []string{"0 to 1000"}},
		{Scenario{Load: []string{"eu-west=-5"}}, ErrBadScenario, []string{"0 to 1000"}},
		{Scenario{Load: []string{"eu-west=1001"}}, ErrBadScenario, []string{"0 to 1000"}},
		{Scenario{Load: []string{"eu-west=NaN"}}, ErrBadScenario, []string{"0 to 1000"}},
		{Scenario{Load: []string{"eu-west=50", "eu-west=60"}}, ErrBadScenario, []string{"twice"}},
	}
	for _, tt := range tests {
		e, idx := fixture(t, gslb.FailOpen)
		_, err := Simulate(e, tt.scenario, TableRows(idx), nil)
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: err = %v, want %v", tt.scenario.Describe(), err, tt.is)
			continue
		}
		for _, m := range tt.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: %q does not mention %q", tt.scenario.Describe(), err, m)
			}
		}
	}
}

func TestReadClients(t *testing.T) {
	_, idx := fixture(t, gslb.FailOpen)
	in := "# resolvers\n198.51.100.7 250\n192.0.2.0/24\n\n2001:db8::1 3 # v6\n"
	cs, err := ReadClients(strings.NewReader(in), "clients.txt", idx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for c := range cs.Seq {
		got = append(got, fmt.Sprintf("%s=%g@%s", c.Name(), c.Weight, c.Client.Region))
	}
	want := []string{"198.51.100.7/32=250@eu-west", "192.0.2.0/24=1@us-east", "2001:db8::1/128=3@"}
	if !slices.Equal(got, want) {
		t.Errorf("clients = %q, want %q", got, want)
	}
	for _, bad := range []string{"nonsense\n", "192.0.2.1 x\n", "192.0.2.1 1 2\n"} {
		if _, err := ReadClients(strings.NewReader(bad), "clients.txt", idx); err == nil || !strings.Contains(err.Error(), "clients.txt:1") {
			t.Errorf("%q: err = %v, want one naming clients.txt:1", bad, err)
		}
	}
}

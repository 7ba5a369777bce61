package admin

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestLoadShown: a load-following record's pools show their load and
// share in /api/v1/records, /api/v1/regions, explain and /metrics.
func TestLoadShown(t *testing.T) {
	store := health.NewStore()
	eu := &gslb.Region{Name: "eu-west"}
	us := &gslb.Region{Name: "us-east"}
	vip := netip.MustParseAddr("198.51.100.10")
	rec := &gslb.Record{Name: "app.example.test.", Type: 1, TTL: 5, Regions: gslb.Failover{}, Targets: gslb.All{}, Load: gslb.LoadHeadroom,
		Pools: []*gslb.Pool{
			{Name: "eu-west", Region: eu, Weight: 1, MinHealthy: 1, Targets: []gslb.Target{{ID: "eu-west/198.51.100.10", Addr: vip, Weight: 1}}},
			{Name: "us-east", Region: us, Weight: 1, MinHealthy: 1, Targets: []gslb.Target{{ID: "us-east/192.0.2.10", Addr: netip.MustParseAddr("192.0.2.10"), Weight: 1}}},
		}}
	e, err := gslb.New([]*gslb.Record{rec}, gslb.HealthOf(store), gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	store.OnPublish(e.Refresh)
	for range 60 {
		store.SetLoads([]health.Load{{Forwarder: "fwd-eu", Region: "eu-west", Listener: "web", VIPs: []netip.Addr{vip},
			Unit: health.UnitRPS, Load: 500, Target: 100, Max: 130, Active: 40, Rate: 500, BackendsUp: 2, BackendsAll: 2}})
	}
	src := quickstart(t)
	src.engine = e
	reg := prometheus.NewRegistry()
	s, base := start(t, src, Options{OpenReads: true, Metrics: reg})
	reg.MustRegister(s.Collector())
	for _, tt := range []struct{ path, want string }{
		{"/api/v1/records", `"reason": "at or above max: only clients no region with headroom can take"`},
		{"/api/v1/regions", `"forwarder": "fwd-eu"`},
		{"/api/v1/regions", `"app.example.test./A/eu-west": {`},
		{"/api/v1/explain?name=app.example.test&client=203.0.113.0/24", `"load": "moved from eu-west (eu-west): it keeps 0% of client subnets`},
		{"/metrics", `meridian_pool_load_share{pool="eu-west",record="app.example.test.",region="eu-west",type="A"} 0`},
		{"/metrics", `meridian_region_load{region="eu-west",unit="rps"} 500`},
		{"/metrics", `meridian_region_max_load{region="eu-west",unit="rps"} 130`},
	} {
		code, raw := get(t, base+tt.path)
		if code != 200 || !strings.Contains(string(raw), tt.want) {
			t.Errorf("GET %s: %d, want %q in\n%s", tt.path, code, tt.want, raw)
		}
	}
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// CheckSpec is one health check to run: the probes' type, which the check
// plan also carries to the probe agents.
type CheckSpec = probes.CheckSpec

// GSLB is the configuration's dynamic part, built into the engine's types.
type GSLB struct {
	Records []*gslb.Record
	Regions map[string]*gslb.Region
	Checks  []CheckSpec
}

// TargetID names a target for health and drains: its region and address.
// Two records answering the same address in the same region share it.
func TargetID(region string, addr netip.Addr) string {
	return string(health.NewTargetID(region, addr))
}

// BuildGSLB turns the validated [[region]] and [[record]] tables into the
// engine's records and the checks that feed it.
func (c *Config) BuildGSLB() (*GSLB, error) {
	g := &GSLB{Regions: map[string]*gslb.Region{}}
	for _, r := range c.Regions {
		g.Regions[r.Name] = &gslb.Region{
			Name: r.Name, Lat: *r.Lat, Lon: *r.Lon, Continent: r.Continent,
			Countries: r.Countries, Bias: r.Bias,
		}
	}
	checks := map[string]CheckSpec{} // by target ID: one check per target
	for i, rc := range c.Records {
		rec := c.record(rc)
		for j, pc := range rc.Pools {
			pool, err := c.pool(g, checks, pc, fmt.Sprintf("record[%d].pool[%d]", i, j))
			if err != nil {
				return nil, err
			}
			if rc.HTTPS != nil && pc.HTTPS != nil {
				pool.HTTPS = serviceParams(rc.HTTPS, pc.HTTPS)
			}
			rec.Pools = append(rec.Pools, pool)
		}
		g.Records = append(g.Records, rec)
	}
	return g, nil
}

// record is the engine's record for rc, without its pools.
func (c *Config) record(rc Record) *gslb.Record {
	rec := &gslb.Record{
		Name:        strings.ToLower(dns.Fqdn(rc.Name)),
		Type:        dns.StringToType[rc.Type],
		TTL:         DefaultRecordTTL,
		FallbackTTL: rc.FallbackTTL,
		HTTPS:       serviceParams(rc.HTTPS, nil),
	}
	if rc.TTL != nil {
		rec.TTL = *rc.TTL
	}
	bits4, bits6 := c.Server.ECSMaxPrefix4, c.Server.ECSMaxPrefix6
	switch rc.Policy {
	case "failover":
		rec.Regions = gslb.Failover{}
	case "geo":
		rec.Regions = &gslb.Geo{
			Subdivisions: upperKeys(rc.Geo.Subdivisions),
			Countries:    upperKeys(rc.Geo.Countries),
			Continents:   upperKeys(rc.Geo.Continents),
			Default:      rc.Geo.Default,
		}
	case "proximity":
		rec.Regions = gslb.Proximity{}
	case "latency":
		rec.Regions = gslb.Latency{}
	case "weighted":
		rec.Regions = gslb.WeightedPools{}
	case "weighted-stable":
		rec.Regions = gslb.WeightedPools{Stable: true, StableBits4: bits4, StableBits6: bits6}
	}
	switch rc.Select {
	case "all":
		rec.Targets = gslb.All{Max: rc.MaxAnswers}
	case "weighted":
		rec.Targets = gslb.WeightedTargets{Count: rc.MaxAnswers}
	case "weighted-stable":
		rec.Targets = gslb.WeightedTargets{Count: rc.MaxAnswers, Stable: true, StableBits4: bits4, StableBits6: bits6}
	}
	if rc.Load == "headroom" {
		rec.Load = gslb.LoadHeadroom
	}
	switch rc.Fail {
	case "servfail":
		rec.Fail = gslb.FailServfail
	case "nodata":
		rec.Fail = gslb.FailNoData
	}
	return rec
}

// pool is the engine's pool for pc, written at key, adding its targets'
// checks to g and to checks (by target ID), which must not differ from
// the ones other pools gave the same target.
func (c *Config) pool(g *GSLB, checks map[string]CheckSpec, pc Pool, key string) (*gslb.Pool, error) {
	pool := &gslb.Pool{Name: pc.Name, Region: g.Regions[pc.Region], Weight: 1, MinHealthy: 1}
	if pc.Weight != nil {
		pool.Weight = *pc.Weight
	}
	if pc.MinHealthy != nil {
		pool.MinHealthy = *pc.MinHealthy
	}
	for k, tc := range pc.Targets {
		addr := netip.MustParseAddr(tc.Address) // validated
		t := gslb.Target{ID: TargetID(pc.Region, addr), Addr: addr, Weight: 1}
		if tc.Weight != nil {
			t.Weight = *tc.Weight
		}
		pool.Targets = append(pool.Targets, t)
		if pc.Check.Type == "none" {
			continue
		}
		spec := c.checkSpec(pc.Check)
		spec.Target, spec.Addr = health.TargetID(t.ID), tc.CheckAddress
		if spec.Addr == "" {
			spec.Addr = net.JoinHostPort(addr.String(), strconv.Itoa(pc.Check.Port))
		}
		old, ok := checks[t.ID]
		if ok && !sameCheck(old, spec) {
			return nil, c.Errorf(0, fmt.Sprintf("%s.target[%d]", key, k), "target %s is checked one way here and another way elsewhere; one address in one region has one health", t.ID)
		}
		if !ok {
			g.Checks = append(g.Checks, spec)
		}
		checks[t.ID] = spec
	}
	return pool, nil
}

// checkSpec is a validated check's spec, for any of its pool's targets.
func (c *Config) checkSpec(ck Check) CheckSpec { return ck.Spec(c.ResolvePath) }

// sameCheck reports whether a and b check the same way, whatever targets
// they are for.
func sameCheck(a, b CheckSpec) bool {
	if !slices.Equal(a.Expect, b.Expect) || !bytes.Equal(a.CAPEM, b.CAPEM) ||
		!bytes.Equal(a.CertPEM, b.CertPEM) || !bytes.Equal(a.KeyPEM, b.KeyPEM) {
		return false
	}
	// The rest is compared whole, so that a field added to CheckSpec
	// later counts without a change here.
	a.Target, b.Target = "", ""
	a.Expect, b.Expect = nil, nil
	a.CAPEM, a.CertPEM, a.KeyPEM = nil, nil, nil
	b.CAPEM, b.CertPEM, b.KeyPEM = nil, nil, nil
	return reflect.DeepEqual(a, b)
}

func upperKeys(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[strings.ToUpper(k)] = v
	}
	return out
}

// CheckDynamicNames holds each dynamic record to the zones it must live in
// (inside a served zone, not below a delegation, at a name with no static
// records) and then reserves the names in their zones, which must not be
// serving yet.
func (c *Config) CheckDynamicNames(set *zones.Set, g *GSLB) error {
	var errs []error
	for i, r := range g.Records {
		key := fmt.Sprintf("record[%d].name", i)
		line := c.LineOf(key)
		z := set.Find(r.Name)
		if z == nil {
			errs = append(errs, c.Errorf(line, key, "%s is in no [[zone]] this server serves", r.Name))
			continue
		}
		switch res := z.Lookup(r.Name, dns.TypeANY); {
		case res.Kind == zones.KindReferral:
			errs = append(errs, c.Errorf(line, key, "%s is below a delegation in zone %s", r.Name, z.Origin()))
		case res.Kind == zones.KindAnswer && !res.Wildcard:
			errs = append(errs, c.Errorf(line, key, "%s also has static records in zone %s; a dynamic name holds no other data", r.Name, z.Origin()))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The names exist now: their parents answer NODATA, and wildcards
	// above them no longer apply to them.
	for _, r := range g.Records {
		set.Find(r.Name).Reserve(r.Name)
	}
	return nil
}

// GeoRows returns the CIDR table's rows for geo.NewTable.
func (c *Config) GeoRows() []geo.Row {
	rows := make([]geo.Row, 0, len(c.Geo.Networks))
	for _, n := range c.Geo.Networks {
		loc := geo.Location{
			Region: n.Region, Country: strings.ToUpper(n.Country),
			Continent: strings.ToUpper(n.Continent), Subdivision: strings.ToUpper(n.Subdivision),
		}
		if n.Lat != nil && n.Lon != nil {
			loc.Lat, loc.Lon, loc.HasCoords = *n.Lat, *n.Lon, true
		}
		rows = append(rows, geo.Row{Prefix: netip.MustParsePrefix(n.Prefix), Location: loc})
	}
	return rows
}

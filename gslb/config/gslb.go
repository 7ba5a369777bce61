package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/probes/checkconfig"
)

// Defaults of the GSLB sections.
const (
	DefaultECSMaxPrefix4  = 24          // server.ecs_max_prefix4: RFC 7871 section 11.1's recommendation
	DefaultECSMaxPrefix6  = 56          // server.ecs_max_prefix6
	DefaultRecordTTL      = 30          // record.ttl: short, so clients follow health changes
	DefaultGeoReload      = time.Minute // geo.reload_interval: how often database files are looked at
	maxAnswersPerDecision = 8
)

// Health configures how check results count.
type Health struct {
	// UnknownIsUp counts a target with no result yet as up, so a server
	// that has just started answers as it will once checks come in,
	// never blind or empty. Default true.
	UnknownIsUp *bool `toml:"unknown_is_up"`
}

// UnknownUp reports the effective UnknownIsUp.
func (h Health) UnknownUp() bool { return h.UnknownIsUp == nil || *h.UnknownIsUp }

// Geo configures where clients are: an operator's CIDR table, consulted
// first, and MMDB databases.
type Geo struct {
	Databases      []GeoDatabase `toml:"database"`
	ReloadInterval Duration      `toml:"reload_interval"` // how often the files are checked for replacement
	Networks       []GeoNetwork  `toml:"network"`
	// NetworksFile is a CSV CIDR table (header: prefix, region, country,
	// continent, subdivision, lat, lon), for tables too long for TOML;
	// read at start and on reload, its rows after the [[geo.network]] ones.
	NetworksFile string `toml:"networks_file"`
}

// GeoDatabase is an MMDB file: GeoIP2/GeoLite2 City or Country as
// geoipupdate installs them ("maxmind"), or an ip-location-db DB-IP lite
// flat file ("ip-location-db"; IPv4 and IPv6 come as two files).
type GeoDatabase struct {
	Path   string `toml:"path"`
	Format string `toml:"format"`
}

// GeoNetwork is one row of the CIDR table: a prefix mapped to a region
// outright, or to a location.
type GeoNetwork struct {
	Prefix      string   `toml:"prefix"`
	Region      string   `toml:"region"`
	Country     string   `toml:"country"`
	Continent   string   `toml:"continent"`
	Subdivision string   `toml:"subdivision"`
	Lat         *float64 `toml:"lat"`
	Lon         *float64 `toml:"lon"`
}

// Region is a place pools live in.
type Region struct {
	Name      string   `toml:"name"`
	Lat       *float64 `toml:"lat"`
	Lon       *float64 `toml:"lon"`
	Continent string   `toml:"continent"`
	Countries []string `toml:"countries"`
	Bias      float64  `toml:"bias"` // proximity bias, -99 to 99 (Route 53 geoproximity)
}

// Record is a dynamic A or AAAA record.
type Record struct {
	Name        string  `toml:"name"` // relative to zone when it has no final dot? no: always a full name
	Type        string  `toml:"type"` // A or AAAA
	TTL         *uint32 `toml:"ttl"`
	FallbackTTL uint32  `toml:"fallback_ttl"`
	Policy      string  `toml:"policy"`      // failover, geo, proximity, latency, weighted, weighted-stable
	Select      string  `toml:"select"`      // all, weighted, weighted-stable
	MaxAnswers  int     `toml:"max_answers"` // all: at most this many (0 = every one); weighted: how many (default 1)
	Fail        string  `toml:"fail"`        // open, servfail, nodata
	// Load makes the answers follow the forwarders' load reports:
	// "headroom" (a pool past its target keeps a falling share of new
	// clients) or "off" (the default).
	Load  string    `toml:"load"`
	Geo   RecordGeo `toml:"geo"`
	Pools []Pool    `toml:"pool"`
	HTTPS *HTTPS    `toml:"https"` // answer HTTPS queries too, hints from this decision
}

// RecordGeo is the geo policy's map from where the client is to regions.
type RecordGeo struct {
	Subdivisions map[string][]string `toml:"subdivisions"` // "US-CA" = ["us-west", "us-east"]
	Countries    map[string][]string `toml:"countries"`    // "DE" = ["eu-west"]
	Continents   map[string][]string `toml:"continents"`   // "EU" = ["eu-west"]
	Default      []string            `toml:"default"`
}

// Pool is a record's targets in one region.
type Pool struct {
	Name       string   `toml:"name"` // default: the region's name
	Region     string   `toml:"region"`
	Weight     *uint32  `toml:"weight"`
	MinHealthy *int     `toml:"min_healthy"`
	Check      Check    `toml:"check"` // how the pool's targets are checked
	Targets    []Target `toml:"target"`
	HTTPS      *HTTPS   `toml:"https"` // overrides the record's https keys when this pool answers
}

// Target is one address of a pool.
type Target struct {
	Address string  `toml:"address"`
	Weight  *uint32 `toml:"weight"`
	// CheckAddress checks this host:port instead of the answered address
	// on the pool's check port (NAT, a separate health port).
	CheckAddress string `toml:"check_address"`
}

// Check is how targets are probed; the probes own its table.
type Check = checkconfig.Check

var (
	regionPolicies = []string{"failover", "geo", "proximity", "latency", "weighted", "weighted-stable"}
	targetPolicies = []string{"all", "weighted", "weighted-stable"}
	failModes      = []string{"open", "servfail", "nodata"}
	loadModes      = []string{"off", "headroom"}
	continents     = []string{"AF", "AN", "AS", "EU", "NA", "OC", "SA"}
)

func (g *Geo) setDefaults() {
	if g.ReloadInterval.Duration == 0 {
		g.ReloadInterval.Duration = DefaultGeoReload
	}
	for i := range g.Databases {
		g.Databases[i].Format = strings.ToLower(cmp.Or(g.Databases[i].Format, "maxmind"))
	}
}

func (r *Record) setDefaults() {
	r.Type = strings.ToUpper(cmp.Or(r.Type, "A"))
	r.Select = strings.ToLower(cmp.Or(r.Select, "all"))
	r.Fail = strings.ToLower(cmp.Or(r.Fail, "open"))
	r.Load = strings.ToLower(cmp.Or(r.Load, "off"))
	r.Policy = strings.ToLower(r.Policy)
	for j := range r.Pools {
		r.Pools[j].setDefaults()
	}
}

func (p *Pool) setDefaults() {
	p.Name = cmp.Or(p.Name, p.Region)
	p.Check.SetDefaults()
	if p.Check.Type == "dns" {
		// A DNS node's targets are name servers; the forwarder's DNS
		// backends name their port.
		p.Check.Port = cmp.Or(p.Check.Port, checkconfig.DefaultDNSPort)
	}
}

// validateGSLB checks the dynamic part: regions, where clients are, and
// the records with their pools, targets and checks.
func (c *Config) validateGSLB(v *validator) {
	c.Server.validateECS(v)
	if c.Geo.ReloadInterval.Duration < time.Second {
		v.fail("geo.reload_interval", "must be at least 1s, got %s", c.Geo.ReloadInterval)
	}
	regions := map[string]bool{}
	for i, r := range c.Regions {
		r.validate(v, fmt.Sprintf("region[%d]", i), regions)
		regions[r.Name] = true
	}
	for i, n := range c.Geo.Networks {
		n.validate(v, fmt.Sprintf("geo.network[%d]", i), regions)
	}
	for i, db := range c.Geo.Databases {
		db.validate(v, fmt.Sprintf("geo.database[%d]", i))
	}
	names := map[string]bool{}
	for i, r := range c.Records {
		key := fmt.Sprintf("record[%d]", i)
		nt := strings.ToLower(strings.TrimSuffix(r.Name, ".")) + "/" + r.Type
		r.validate(v, key, regions, names[nt])
		names[nt] = true
	}
	c.validateHTTPS(v)
}

// validate checks the region at key; seen holds the names before it.
func (r *Region) validate(v *validator, key string, seen map[string]bool) {
	switch {
	case r.Name == "":
		v.fail(key+".name", "missing: every region needs a name")
	case seen[r.Name]:
		v.fail(key+".name", "region %q is defined twice", r.Name)
	}
	if r.Lat == nil || r.Lon == nil {
		v.fail(key, "region %q needs lat and lon (its location, for proximity and explain)", r.Name)
	} else if *r.Lat < -90 || *r.Lat > 90 || *r.Lon < -180 || *r.Lon > 180 {
		v.fail(key+".lat", "lat must be -90 to 90 and lon -180 to 180")
	}
	if r.Continent != "" && !slices.Contains(continents, r.Continent) {
		v.fail(key+".continent", "must be one of %s, got %q", strings.Join(continents, " "), r.Continent)
	}
	if r.Bias <= -100 || r.Bias >= 100 {
		v.fail(key+".bias", "must be between -99 and 99, got %g", r.Bias)
	}
}

func (n *GeoNetwork) validate(v *validator, key string, regions map[string]bool) {
	p, err := netip.ParsePrefix(n.Prefix)
	switch {
	case err != nil:
		v.fail(key+".prefix", "%q is not a CIDR prefix (\"192.0.2.0/24\")", n.Prefix)
	case p.Masked() != p:
		v.fail(key+".prefix", "%q has bits set past /%d (write %s)", n.Prefix, p.Bits(), p.Masked())
	}
	if n.Region != "" && !regions[n.Region] {
		v.fail(key+".region", "no [[region]] is named %q", n.Region)
	}
	if n.Region == "" && n.Country == "" && n.Continent == "" && n.Lat == nil {
		v.fail(key, "maps %s to nothing: give region, or country/continent/subdivision/lat+lon", n.Prefix)
	}
	if (n.Lat == nil) != (n.Lon == nil) {
		v.fail(key, "give both lat and lon, or neither")
	}
}

func (db *GeoDatabase) validate(v *validator, key string) {
	if db.Path == "" {
		v.fail(key+".path", "missing: the MMDB file to read")
	}
	if db.Format != "maxmind" && db.Format != "ip-location-db" {
		v.fail(key+".format", `must be "maxmind" (GeoIP2/GeoLite2 City or Country, DB-IP's MMDB files) or "ip-location-db" (its flat files), got %q`, db.Format)
	}
}

// validate checks the record at key; twice is set when a record before it
// has its name and type.
func (r *Record) validate(v *validator, key string, regions map[string]bool, twice bool) {
	if r.Name == "" {
		v.fail(key+".name", "missing: every record needs a name")
	}
	if twice {
		v.fail(key+".name", "record %s %s is defined twice", r.Name, r.Type)
	}
	if r.Type != "A" && r.Type != "AAAA" {
		v.fail(key+".type", "must be A or AAAA, got %q", r.Type)
	}
	for _, e := range []struct {
		name, val string
		of        []string
	}{{"policy", r.Policy, regionPolicies}, {"select", r.Select, targetPolicies}, {"fail", r.Fail, failModes}, {"load", r.Load, loadModes}} {
		if !slices.Contains(e.of, e.val) {
			v.fail(key+"."+e.name, "must be one of %s, got %q", strings.Join(e.of, ", "), e.val)
		}
	}
	if r.MaxAnswers < 0 || r.MaxAnswers > maxAnswersPerDecision {
		v.fail(key+".max_answers", "must be 0 to %d, got %d", maxAnswersPerDecision, r.MaxAnswers)
	}
	r.Geo.validate(v, key+".geo", regions)
	if len(r.Pools) == 0 {
		v.fail(key, "record %s has no [[record.pool]]", r.Name)
	}
	pools := map[string]bool{}
	for j, p := range r.Pools {
		p.validate(v, fmt.Sprintf("%s.pool[%d]", key, j), r, regions, pools[p.Name])
		pools[p.Name] = true
	}
}

// validate checks that the geo map at key names only configured regions.
func (g *RecordGeo) validate(v *validator, key string, regions map[string]bool) {
	for _, reg := range g.Default {
		if !regions[reg] {
			v.fail(key+".default", "no [[region]] is named %q", reg)
		}
	}
	for _, m := range []struct {
		name string
		m    map[string][]string
	}{{"subdivisions", g.Subdivisions}, {"countries", g.Countries}, {"continents", g.Continents}} {
		for code, list := range m.m {
			for _, reg := range list {
				if !regions[reg] {
					v.fail(key+"."+m.name, "%s maps to %q, and no [[region]] has that name", code, reg)
				}
			}
		}
	}
}

// validate checks the pool at key of record r; twice is set when a pool
// before it in r has its name.
func (p *Pool) validate(v *validator, key string, r *Record, regions map[string]bool, twice bool) {
	switch {
	case p.Region == "":
		v.fail(key+".region", "missing: every pool lives in a region")
	case !regions[p.Region]:
		v.fail(key+".region", "no [[region]] is named %q", p.Region)
	}
	if twice {
		v.fail(key+".name", "pool %q appears twice in record %s", p.Name, r.Name)
	}
	if p.MinHealthy != nil && (*p.MinHealthy < 1 || *p.MinHealthy > len(p.Targets)) {
		v.fail(key+".min_healthy", "must be 1 to the number of targets (%d), got %d", len(p.Targets), *p.MinHealthy)
	}
	if len(p.Targets) == 0 {
		v.fail(key, "pool %q has no [[record.pool.target]]", p.Name)
	}
	validateCheck(v, key+".check", p.Check)
	for k, t := range p.Targets {
		t.validate(v, fmt.Sprintf("%s.target[%d]", key, k), key, r.Type, p.Check)
	}
}

// validate checks the target at key of the pool at pkey, answered in a
// record of type rtype and checked by ck.
func (t *Target) validate(v *validator, key, pkey, rtype string, ck Check) {
	a, err := netip.ParseAddr(t.Address)
	switch {
	case err != nil:
		v.fail(key+".address", "%q is not an IP address", t.Address)
	case rtype == "A" && !a.Is4():
		v.fail(key+".address", "%s is not an IPv4 address, and the record is type A", t.Address)
	case rtype == "AAAA" && (a.Is4() || a.Is4In6()):
		v.fail(key+".address", "%s is not an IPv6 address, and the record is type AAAA", t.Address)
	}
	checked := a // the address the check goes to
	if t.CheckAddress != "" {
		ap, err := netip.ParseAddrPort(t.CheckAddress)
		if err != nil {
			v.fail(key+".check_address", "%q is not ip:port", t.CheckAddress)
		}
		checked = ap.Addr()
	} else if ck.Type != "none" && (ck.Port < 1 || ck.Port > 65535) {
		v.fail(pkey+".check.port", "needed (1-65535) to check %s, or give the target a check_address", t.Address)
	}
	if src, err := netip.ParseAddr(ck.Source); err == nil && checked.IsValid() && src.Unmap().Is4() != checked.Unmap().Is4() {
		v.fail(pkey+".check.source", "%s cannot reach %s: one is IPv4, the other IPv6", src, checked)
	}
}

// validateCheck adds the check's own problems at key.
func validateCheck(v *validator, key string, ck Check) {
	for _, p := range ck.Validate() {
		v.fail(strings.TrimSuffix(key+"."+p.Key, "."), "%s", p.Msg)
	}
}

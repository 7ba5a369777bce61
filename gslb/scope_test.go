package gslb

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/meridian-gslb/meridian/geo"
	"github.com/oschwald/maxminddb-golang/v2"
)

// The scope property: no scope the engine returns may cover a client that
// would be ordered differently, and every scope is as wide as that allows.
// The oracle below computes the widest correct prefix by brute force from
// the database file itself (read with maxminddb, not the engine's ranges)
// and the CIDR rows, so it shares nothing with the partitions under test.

// place is where a database record puts its network.
type place struct {
	country  string
	lat, lon float64
	coords   bool
}

var places = []place{
	{"DE", 52.5, 13.4, true}, {"US", 40.7, -74.0, true}, {"US", 37.8, -122.4, true},
	{"JP", 35.7, 139.7, true}, {"BR", -23.5, -46.6, true}, {"FR", 48.9, 2.35, true},
	{"JP", 0, 0, false}, {"AU", 0, 0, false}, {"", 0, 0, false}, // the last says nothing: a miss
}

func (p place) record() mmdbtype.Map {
	m := mmdbtype.Map{}
	if p.country != "" {
		m["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(p.country)}
	}
	if p.coords {
		m["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(p.lat), "longitude": mmdbtype.Float64(p.lon)}
	}
	return m
}

// geoWorld is a random database and CIDR table, the networks of both, and
// an oracle over them.
type geoWorld struct {
	path  string
	mm    *maxminddb.Reader
	table *geo.Table
	rows  []geo.Row
}

// randomPrefix returns a prefix of v4 or v6 inside a few small regions of
// the address space, so networks nest and touch often.
func randomPrefix(rng *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		b[4], b[5], b[6] = byte(rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))
		p, _ := netip.AddrFrom16(b).Prefix(36 + rng.IntN(22))
		return p
	}
	a := netip.AddrFrom4([4]byte{byte(10 + rng.IntN(2)), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	p, _ := a.Prefix(10 + rng.IntN(17))
	return p
}

func newGeoWorld(t *testing.T, rng *rand.Rand, regions []string) *geoWorld {
	t.Helper()
	w := &geoWorld{path: filepath.Join(t.TempDir(), "City.mmdb")}
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IPVersion: 6, RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	// Wide networks first, then narrower ones inside them: a later insert
	// splits what it lands in, as real databases nest.
	var nets []netip.Prefix
	for range 120 {
		nets = append(nets, randomPrefix(rng, rng.IntN(3) == 0))
	}
	slices.SortFunc(nets, func(a, b netip.Prefix) int { return a.Bits() - b.Bits() })
	for _, p := range nets {
		pl := places[rng.IntN(len(places))]
		_, n, _ := net.ParseCIDR(p.String())
		if err := tree.Insert(n, pl.record()); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(w.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if w.mm, err = maxminddb.Open(w.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.mm.Close() })

	// Operator rows: regions outright, countries, coordinates, rows
	// inside database networks and inside other rows.
	seen := map[netip.Prefix]bool{}
	for len(w.rows) < 25 {
		p := randomPrefix(rng, rng.IntN(3) == 0)
		if seen[p] {
			continue
		}
		seen[p] = true
		var loc geo.Location
		switch rng.IntN(4) {
		case 0, 1:
			loc.Region = regions[rng.IntN(len(regions))]
		case 2:
			loc.Country = []string{"DE", "JP", "US", "ZA"}[rng.IntN(4)]
		default:
			pl := places[rng.IntN(6)]
			loc.Country, loc.Lat, loc.Lon, loc.HasCoords = pl.country, pl.lat, pl.lon, true
		}
		w.rows = append(w.rows, geo.Row{Prefix: p, Location: loc})
	}
	if w.table, err = geo.NewTable(w.rows); err != nil {
		t.Fatal(err)
	}
	return w
}

// dbLocate is the oracle's database lookup, straight from the file.
func (w *geoWorld) dbLocate(a netip.Addr) (geo.Location, bool) {
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Location struct {
			Latitude  *float64 `maxminddb:"latitude"`
			Longitude *float64 `maxminddb:"longitude"`
		} `maxminddb:"location"`
	}
	res := w.mm.Lookup(a)
	if !res.Found() {
		return geo.Location{}, false
	}
	if err := res.Decode(&rec); err != nil {
		panic(err)
	}
	loc := geo.Location{Country: rec.Country.ISOCode, Continent: geo.ContinentOf(rec.Country.ISOCode)}
	if rec.Location.Latitude != nil {
		loc.Lat, loc.Lon, loc.HasCoords = *rec.Location.Latitude, *rec.Location.Longitude, true
	}
	return loc, loc.Country != "" || loc.HasCoords
}

// oracleClient is where the table, then the database, put a: a row that
// names only a region takes its place from the database.
func (w *geoWorld) oracleClient(a netip.Addr) Client {
	row, ok := w.table.Locate(a)
	db, dbOK := w.dbLocate(a)
	switch {
	case ok && row.Country == "" && !row.HasCoords && dbOK:
		db.Region = row.Region
		return clientAt(db)
	case ok:
		return clientAt(row)
	case dbOK:
		return clientAt(db)
	}
	return Client{}
}

// boundaries returns the first address of every network of the database
// and the table inside p, and of what follows each: between two of them
// every address is located alike.
func (w *geoWorld) boundaries(p netip.Prefix) []netip.Addr {
	out := []netip.Addr{p.Addr()}
	for res := range w.mm.NetworksWithin(p, maxminddb.IncludeNetworksWithoutData()) {
		n := res.Prefix()
		if n.Addr().Is4() != p.Addr().Is4() {
			continue
		}
		out = append(out, n.Addr(), lastOf(n).Next())
	}
	for _, r := range w.rows {
		if r.Prefix.Overlaps(p) {
			out = append(out, r.Prefix.Masked().Addr(), lastOf(r.Prefix).Next())
		}
	}
	return out
}

func lastOf(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// widest is the oracle: the shortest prefix of a in which every address
// gets a's order from the policy. With near, the latency policy's order
// also depends on which vantage is nearest the client, so on where it is.
func (w *geoWorld) widest(r *Record, a netip.Addr, near bool) int {
	order := func(x netip.Addr) string {
		c := w.oracleClient(x)
		o, _ := r.Regions.Order(&c, r, &Inputs{}, nil)
		if _, latency := r.Regions.(Latency); latency && near && c.HasCoords {
			return fmt.Sprint(o, c.Lat, c.Lon)
		}
		return fmt.Sprint(o)
	}
	want := order(a)
	for bits := 0; bits <= a.BitLen(); bits++ {
		p, _ := a.Prefix(bits)
		same := true
		for _, b := range w.boundaries(p) {
			if b.IsValid() && p.Contains(b) && order(b) != want {
				same = false
				break
			}
		}
		if same {
			return bits
		}
	}
	return a.BitLen()
}

func TestScopeIsWidestCorrect(t *testing.T) {
	regions := []*Region{
		{Name: "eu", Lat: 50.1, Lon: 8.7, Continent: "EU"},
		{Name: "us", Lat: 39.0, Lon: -77.5, Continent: "NA"},
		{Name: "ap", Lat: 35.7, Lon: 139.7, Continent: "AS"},
	}
	names := []string{"eu", "us", "ap"}
	pools := func() []*Pool {
		var out []*Pool
		for i, reg := range regions {
			out = append(out, &Pool{Name: reg.Name, Region: reg, Weight: 1,
				Targets: []Target{{ID: reg.Name + "/1", Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Weight: 1}}})
		}
		return out
	}
	policies := []RegionPolicy{
		&Geo{Countries: map[string][]string{"DE": {"eu"}, "FR": {"eu"}, "US": {"us"}}, Continents: map[string][]string{"AS": {"ap"}}, Default: []string{"us"}},
		Proximity{},
		Latency{}, // no times measured: proximity's order, through the policy
	}
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 7))
		// Health from several vantages (HealthMap) orders latency by the
		// nearest one; a view without them by one set of times.
		var health HealthView = NewHealthMap()
		near := seed%2 == 0
		if !near {
			health = farHealth{}
		}
		w := newGeoWorld(t, rng, names)
		var recs []*Record
		for i, pol := range policies {
			recs = append(recs, &Record{Name: fmt.Sprintf("r%d.example.", i), Type: 1, TTL: 30, Regions: pol, Targets: All{}, Pools: pools()})
		}
		e, err := New(recs, health, Options{UnknownIsUp: true})
		if err != nil {
			t.Fatal(err)
		}
		db, err := geo.OpenMaxMind(w.path)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := geo.NewIndex(geo.Named{Name: "table", Locator: w.table}, geo.Named{Name: "db", Locator: db})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.SetGeo(idx); err != nil {
			t.Fatal(err)
		}
		for _, a := range w.clients(rng, 60) {
			for _, r := range recs {
				p, _ := a.Prefix(min(a.BitLen(), []int{16, 20, 24, 28, 32, 48, 56, 64}[rng.IntN(8)]))
				var c Client
				e.Locate(&c, p)
				d := e.Decide(r, &c, nil)
				// The oracle orders the masked address the decision was made for.
				oc := w.oracleClient(p.Addr())
				want, _ := r.Regions.Order(&oc, r, &Inputs{}, nil)
				if d.Pool != r.Pools[want[0]] {
					t.Fatalf("seed %d %s %s: answered %s, the oracle orders %v", seed, r.Regions.Name(), p, d.Pool.Name, want)
				}
				if widest := w.widest(r, p.Addr(), near); d.Scope != widest {
					t.Fatalf("seed %d %s client %s: scope /%d, the widest correct is /%d", seed, r.Regions.Name(), p, d.Scope, widest)
				}
			}
		}
	}
}

// clients picks addresses at and around the networks' edges, where a
// wrong scope shows, and some anywhere in the regions used.
func (w *geoWorld) clients(rng *rand.Rand, n int) []netip.Addr {
	var out []netip.Addr
	for _, r := range w.rows {
		out = append(out, r.Prefix.Masked().Addr(), lastOf(r.Prefix), lastOf(r.Prefix).Next(), r.Prefix.Masked().Addr().Prev())
	}
	for range n {
		out = append(out, randomPrefix(rng, rng.IntN(3) == 0).Addr())
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(len(out), n)]
}

// farHealth is a health view with no vantages: every target unknown, no
// times measured.
type farHealth struct{}

func (farHealth) State(string) State               { return Unknown }
func (farHealth) RTT(string) (time.Duration, bool) { return 0, false }

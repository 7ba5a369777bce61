package geo

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// benchRows returns n distinct rows, alternately a random-looking IPv4 /24
// and an IPv6 /48 in 2400::/6 (clear of 6to4 and Teredo, which mmdbwriter
// aliases), mapped to 64 regions. Multiplying a counter
// by an odd constant modulo a power of two permutes it, so the prefixes
// never repeat.
func benchRows(n int) []Row {
	regions := make([]string, 64)
	for i := range regions {
		regions[i] = fmt.Sprintf("region-%02d", i)
	}
	rows := make([]Row, n)
	for i := range rows {
		k := uint64(i / 2)
		var p netip.Prefix
		if i%2 == 0 {
			x := uint32(k*2654435761) & (1<<24 - 1)
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(x >> 16), byte(x >> 8), byte(x), 0}), 24)
		} else {
			x := (k * 0x9E3779B97F4A7C15) & (1<<42 - 1)
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], (0x2400_0000_0000|x)<<16)
			p = netip.PrefixFrom(netip.AddrFrom16(b), 48)
		}
		rows[i] = Row{Prefix: p, Location: Location{Region: regions[i%len(regions)]}}
	}
	return rows
}

// benchAddrs returns n addresses: half inside rows, half random (mostly
// misses), IPv4 and IPv6 alike.
func benchAddrs(rows []Row, n int) []netip.Addr {
	r := rand.New(rand.NewPCG(1, 2))
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		if i%2 == 0 {
			a := rows[r.IntN(len(rows))].Prefix.Addr().As16()
			a[15] = byte(r.Uint32()) // inside both a /24 and a /48
			addr := netip.AddrFrom16(a)
			addrs[i] = addr.Unmap()
			continue
		}
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], r.Uint64())
		binary.BigEndian.PutUint64(b[8:], r.Uint64())
		if i%4 == 1 {
			addrs[i] = netip.AddrFrom4([4]byte(b[:4]))
		} else {
			addrs[i] = netip.AddrFrom16(b)
		}
	}
	return addrs
}

func BenchmarkTableBuild(b *testing.B) {
	rows := benchRows(1_000_000)
	b.ReportAllocs()
	var tab *Table
	for b.Loop() {
		var err error
		if tab, err = NewTable(rows); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(tab)
	runtime.GC()
	runtime.ReadMemStats(&without)
	b.ReportMetric(float64(with.HeapAlloc-without.HeapAlloc)/(1<<20), "MiB-table")
}

// benchDBNets returns a City-shaped fixture of n networks (and the
// matching flat one) so lookups walk a tree of realistic depth.
func benchDBNets(n int) (city, country, flat4, flat6 []fixtureNet) {
	countries := []string{"DE", "US", "JP", "BR", "AU", "ZA", "FR", "IN"}
	for i, row := range benchRows(n) {
		c := countries[i%len(countries)]
		lat, lon := float64(i%180)-89.5, float64(i%360)-179.5
		cidr := row.Prefix.String()
		city = append(city, fixtureNet{cidr, cityRec(c, ContinentOf(c), "AB", true, lat, lon)})
		country = append(country, fixtureNet{cidr, countryRec(c, ContinentOf(c))})
		rec := fixtureNet{cidr, flatRec(c, "Some State", mmdbtype.Float64(lat), mmdbtype.Float64(lon))}
		if row.Prefix.Addr().Is4() {
			flat4 = append(flat4, rec)
		} else {
			flat6 = append(flat6, rec)
		}
	}
	return city, country, flat4, flat6
}

func BenchmarkLocate(b *testing.B) {
	const dbNets = 20_000
	dir := b.TempDir()
	cityNets, countryNets, flat4Nets, flat6Nets := benchDBNets(dbNets)
	paths := map[string]string{}
	for name, spec := range map[string]struct {
		typ  string
		ipv  int
		nets []fixtureNet
	}{
		"city":    {"GeoLite2-City", 6, cityNets},
		"country": {"GeoLite2-Country", 6, countryNets},
		"flat4":   {"ip-location-db", 4, flat4Nets},
		"flat6":   {"ip-location-db", 6, flat6Nets},
	} {
		paths[name] = filepath.Join(dir, name+".mmdb")
		writeMMDB(b, paths[name], spec.typ, spec.ipv, spec.nets)
	}
	open := func(f Format, name string) Locator {
		l, err := f.Open(paths[name])
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	dbAddrs := benchAddrs(benchRows(dbNets), 1024)

	run := func(b *testing.B, l Locator, addrs []netip.Addr) {
		b.ReportAllocs()
		hits, i := 0, 0
		for b.Loop() {
			if _, ok := l.Locate(addrs[i%len(addrs)]); ok {
				hits++
			}
			i++
		}
		b.ReportMetric(float64(hits)/float64(i), "hit-ratio")
	}
	b.Run("table-1M", func(b *testing.B) {
		rows := benchRows(1_000_000)
		tab, err := NewTable(rows)
		if err != nil {
			b.Fatal(err)
		}
		run(b, tab, benchAddrs(rows, 1024))
	})
	b.Run("maxmind-city", func(b *testing.B) { run(b, open(FormatMaxMind, "city"), dbAddrs) })
	b.Run("maxmind-country", func(b *testing.B) { run(b, open(FormatMaxMind, "country"), dbAddrs) })
	b.Run("flat-v4+v6", func(b *testing.B) {
		run(b, Chain{open(FormatFlat, "flat4"), open(FormatFlat, "flat6")}, dbAddrs)
	})
	b.Run("chain-table-miss-then-city", func(b *testing.B) {
		tab, err := NewTable([]Row{{pfx("192.0.2.0/24"), Location{Region: "r"}}})
		if err != nil {
			b.Fatal(err)
		}
		run(b, Chain{tab, open(FormatMaxMind, "city")}, dbAddrs)
	})
	b.Run("watcher-city", func(b *testing.B) {
		w, err := NewWatcher(paths["city"], FormatMaxMind.Open, WatcherOptions{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, w, dbAddrs)
	})
}

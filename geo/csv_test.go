package geo

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestReadRows(t *testing.T) {
	src := "# an IPAM export\nprefix,region,country,lat,lon\n192.0.2.0/24,us-east,,,\n198.51.100.0/24,,FR,48.86,2.35\n2001:db8::/32,eu-west,,,\n"
	rows, err := ReadRows(strings.NewReader(src), "nets.csv")
	if err != nil {
		t.Fatal(err)
	}
	table, err := NewTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr, region, country string
		coords                bool
	}{
		{"192.0.2.9", "us-east", "", false},
		{"198.51.100.1", "", "FR", true},
		{"2001:db8::1", "eu-west", "", false},
	} {
		loc, ok := table.Locate(netip.MustParseAddr(tt.addr))
		if !ok || loc.Region != tt.region || loc.Country != tt.country || loc.HasCoords != tt.coords {
			t.Errorf("%s: %+v %v", tt.addr, loc, ok)
		}
	}
}

func TestReadRowsErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"net,region\n", "nets.csv:1: unknown column \"net\""},
		{"region\n", "nets.csv:1: no prefix column"},
		{"prefix,lat\n", "nets.csv:1: give both lat and lon"},
		{"prefix,region\n192.0.2.0/24,a\nbanana,b\n", "nets.csv:3:"},
		{"prefix,lat,lon\n192.0.2.0/24,north,1\n", "nets.csv:2: lat \"north\""},
	} {
		_, err := ReadRows(strings.NewReader(tt.src), "nets.csv")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.src, err, tt.want)
		}
	}
}

// BenchmarkReadMillionRows reads and builds a one-million-row CIDR table
// from CSV, the way a configuration with geo.networks_file loads it.
func BenchmarkReadMillionRows(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("prefix,region\n")
	for i := range 1_000_000 {
		fmt.Fprintf(&sb, "%d.%d.%d.0/24,r%d\n", 10+i>>16, i>>8&0xff, i&0xff, i%8)
	}
	src := sb.String()
	b.ReportAllocs()
	for b.Loop() {
		rows, err := ReadRows(strings.NewReader(src), "nets.csv")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewTable(rows); err != nil {
			b.Fatal(err)
		}
	}
}

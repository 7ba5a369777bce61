package whatif

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
)

// millionRows is a CIDR table of n /24 rows from 1.0.0.0 on, mapped to
// the three regions in turn, as an operator's big table would be.
func millionRows(t testing.TB, n int) *geo.Index {
	t.Helper()
	regions := []string{"us-east", "eu-west", "ap-northeast"}
	rows := make([]geo.Row, n)
	for i := range rows {
		a := uint32(1<<24 + i<<8)
		addr := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), 0})
		rows[i] = geo.Row{Prefix: netip.PrefixFrom(addr, 24), Location: geo.Location{Region: regions[i%3]}}
	}
	table, err := geo.NewTable(rows)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := geo.NewIndex(geo.Named{Name: "geo.network", Locator: table})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// A million rows against one scenario: every third row moves. The time
// is logged, not asserted (the machine is shared); the bound is
// 10 s, and BenchmarkSimulateMillionRows measures it.
func TestSimulateMillionRows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million-row table")
	}
	const n = 1 << 20
	e, _ := fixture(t, gslb.FailOpen)
	idx := millionRows(t, n)
	start := time.Now()
	rep, err := Simulate(e, Scenario{Down: []string{"eu-west"}}, TableRows(idx), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows simulated in %s", n, time.Since(start).Round(time.Millisecond))
	if rep.Clients != n {
		t.Fatalf("clients = %d, want %d", rep.Clients, n)
	}
	app := rep.Records[0]
	if len(app.Moves) != 1 || app.Moves[0].Clients != (n+1)/3 || len(app.Moves[0].Sample) != MaxExamples {
		t.Fatalf("moves = %+v, want one of %d clients with %d examples", app.Moves, (n+1)/3, MaxExamples)
	}
}

func BenchmarkSimulateMillionRows(b *testing.B) {
	e, _ := fixture(b, gslb.FailOpen)
	idx := millionRows(b, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Simulate(e, Scenario{Down: []string{"eu-west"}}, TableRows(idx), nil); err != nil {
			b.Fatal(err)
		}
	}
}

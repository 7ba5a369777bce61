package whatif

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

// loadFixture is a record that follows load, failing over from eu-west
// to us-east, beside one that does not (over ap-northeast), and 256
// client /24s.
func loadFixture(t *testing.T) (*gslb.Engine, Clients) {
	t.Helper()
	lb := &gslb.Record{Name: "lb.example.test.", Type: dns.TypeA, TTL: 30, Load: gslb.LoadHeadroom,
		Regions: gslb.Failover{}, Targets: gslb.All{},
		Pools: []*gslb.Pool{pool("eu-west", euWest, 1, "198.51.100.100"), pool("us-east", usEast, 1, "192.0.2.100")}}
	plain := &gslb.Record{Name: "plain.example.test.", Type: dns.TypeA, TTL: 30,
		Regions: gslb.Failover{}, Targets: gslb.All{},
		Pools: []*gslb.Pool{pool("ap-northeast", apNE, 1, "203.0.113.100"), pool("eu-west", euWest, 1, "198.51.100.101")}}
	e, err := gslb.New([]*gslb.Record{lb, plain}, nil, gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 256 {
		fmt.Fprintf(&lines, "10.1.%d.0/24\n", i)
	}
	clients, err := ReadClients(strings.NewReader(lines.String()), "subnets", nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, clients
}

// TestSimulateLoad: a region's reported load moves what the node's load
// controller would once settled: nothing up to the target, part of the
// clients between target and max (the share falls on a smoothstep), all
// of them from max, to the region with headroom; with every region past
// max every client still has an answer; a region where no record follows
// load changes nothing and says so.
func TestSimulateLoad(t *testing.T) {
	tests := []struct {
		name     string
		load     []string
		to       string // where the moved clients go
		minMoved int    // of the 256 clients
		maxMoved int
		share    float64 // the first region's settled share (-1: none settled)
		note     string  // in the load result of the first region
	}{
		{"below target", []string{"eu-west=60"}, "", 0, 0, 1, ""},
		{"at target", []string{"eu-west=80%"}, "", 0, 0, 1, ""},
		// Half way from target to max the smoothstep keeps half.
		{"between target and max", []string{"eu-west=90"}, "us-east", 90, 166, 0.5, ""},
		{"near max", []string{"eu-west=95"}, "us-east", 180, 240, 0.156, ""},
		{"at max", []string{"eu-west=100"}, "us-east", 256, 256, 0, ""},
		{"far past max", []string{"eu-west=400"}, "us-east", 256, 256, 0, ""},
		// Only the fallback is loaded: the primary keeps everyone.
		{"fallback at max", []string{"us-east=100"}, "", 0, 0, 0, ""},
		// us-east past target but short of max keeps some share: every
		// client goes to it, the region with most share left.
		{"both loaded, one short of max", []string{"eu-west=200", "us-east=95"}, "us-east", 256, 256, 0, ""},
		// Neither keeps anyone: each client goes to the one with most
		// share left, the first of equals, eu-west; none is unanswered.
		{"every region past max", []string{"eu-west=1000", "us-east=1000"}, "", 0, 0, 0, ""},
		{"no record follows load there", []string{"ap-northeast=500"}, "", 0, 0, -1, "nothing changes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, clients := loadFixture(t)
			rep, err := Simulate(e, Scenario{Load: tc.load}, clients, nil)
			if err != nil {
				t.Fatal(err)
			}
			lb, plain := rep.Records[0], rep.Records[1]
			if moved := movedTo(t, lb, tc.to); moved < tc.minMoved || moved > tc.maxMoved {
				t.Errorf("%d clients move, want %d to %d", moved, tc.minMoved, tc.maxMoved)
			}
			if len(plain.Moves) != 0 || lb.Unhealthy != nil || plain.Unhealthy != nil {
				t.Errorf("plain record moves %v; no healthy answer: %+v, %+v", plain.Moves, lb.Unhealthy, plain.Unhealthy)
			}
			checkLoadResult(t, rep, len(tc.load), tc.share, tc.note)
		})
	}
}

// movedTo counts the clients that move, each of them to region to with
// an answer.
func movedTo(t *testing.T, rec RecordReport, to string) int {
	t.Helper()
	moved := 0
	for _, m := range rec.Moves {
		if m.To.Region != to || m.To.Outcome != "answered" {
			t.Errorf("move %s -> %s, want only to %s", m.From, m.To, to)
		}
		moved += m.Clients
	}
	return moved
}

// checkLoadResult checks the report's load results: one per region, the
// first settled at share (within the hysteresis) or noting note, and the
// text's line for it.
func checkLoadResult(t *testing.T, rep *Report, regions int, share float64, note string) {
	t.Helper()
	if len(rep.Load) != regions || !strings.Contains(rep.Load[0].Note, note) {
		t.Fatalf("load results %+v, want %d, the first noting %q", rep.Load, regions, note)
	}
	first := rep.Load[0]
	if share < 0 && len(first.Pools) != 0 {
		t.Errorf("pools settled in %s: %+v", first.Region, first.Pools)
	}
	if share >= 0 && (len(first.Pools) != 1 || math.Abs(first.Pools[0].Share-share) > gslb.DefaultLoadHysteresis) {
		t.Errorf("settled %+v, want one pool at share %v", first.Pools, share)
	}
	// plain.example.test has pools in eu-west and ap-northeast, none in
	// us-east, and does not follow load.
	if plain := slices.Equal(first.Unchanged, []string{"plain.example.test/A"}); plain != (first.Region != "us-east") {
		t.Errorf("unchanged in %s: %v", first.Region, first.Unchanged)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil || !strings.Contains(text.String(), "load: "+first.Region+" reports ") {
		t.Errorf("text lacks the load line (%v):\n%s", err, text.String())
	}
}

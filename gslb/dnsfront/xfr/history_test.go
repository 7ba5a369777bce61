package xfr

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// zoneOf builds example.test with serial and the records (master-file
// lines, relative to the zone) besides its SOA and NS.
func zoneOf(t testing.TB, serial uint32, lines ...string) *zones.Zone {
	t.Helper()
	all := append([]string{
		fmt.Sprintf("@ 3600 IN SOA ns1 hostmaster %d 7200 3600 1209600 300", serial),
		"@ 3600 IN NS ns1",
		"ns1 300 IN A 192.0.2.53",
	}, lines...)
	var rrs []dns.RR
	for _, l := range all {
		rr, err := zones.ParseRecord("example.test.", l, 300)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	z, err := zones.Build("example.test.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func setOf(t testing.TB, zs ...*zones.Zone) *zones.Set {
	t.Helper()
	s, err := zones.NewSet(zs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func strs(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

// load runs one load of example.test through h.
func load(t *testing.T, h *History, plan ZonePlan, keep int, now time.Time, z *zones.Zone) (*History, *zones.Zone, bool) {
	t.Helper()
	next, set, changes, err := h.Next(setOf(t, z), map[string]ZonePlan{"example.test.": plan}, keep, now)
	if err != nil {
		t.Fatal(err)
	}
	return next, set.Find("example.test."), len(changes) == 1
}

func TestHistorySerials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v1 := func() *zones.Zone { return zoneOf(t, 2026010101, "www 300 IN A 192.0.2.10") }
	v2 := func() *zones.Zone { return zoneOf(t, 2026010101, "www 300 IN A 192.0.2.11") }
	v2ttl := func() *zones.Zone { return zoneOf(t, 2026010101, "www 60 IN A 192.0.2.11") }
	low1 := func() *zones.Zone { return zoneOf(t, 1, "www 300 IN A 192.0.2.10") }
	low2 := func() *zones.Zone { return zoneOf(t, 1, "www 300 IN A 192.0.2.11") }
	for _, tt := range []struct {
		name    string
		plan    ZonePlan
		loads   []func() *zones.Zone
		serials []uint32 // served after each load
		changed []bool   // whether each load is to be notified
	}{
		{"file: the file's serial, unchanged on a change", ZonePlan{Serial: SerialFile, Transfer: true},
			[]func() *zones.Zone{v1, v2}, []uint32{2026010101, 2026010101}, []bool{true, false}},
		{"unixtime: a file's serial above the time is kept", ZonePlan{Serial: SerialUnixtime},
			[]func() *zones.Zone{v1, v2}, []uint32{2026010101, 2026010102}, []bool{true, true}},
		{"increment: one more on a change, none without", ZonePlan{Serial: SerialIncrement, Transfer: true},
			[]func() *zones.Zone{v1, v1, v2, v2ttl}, []uint32{2026010101, 2026010101, 2026010102, 2026010103}, []bool{true, false, true, true}},
		{"unixtime: now at start and on a change, one more within a second", ZonePlan{Serial: SerialUnixtime},
			[]func() *zones.Zone{low1, low1, low2, low1}, []uint32{1_800_000_000, 1_800_000_000, 1_800_000_001, 1_800_000_002}, []bool{true, false, true, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h *History
			for i, mk := range tt.loads {
				var z *zones.Zone
				var changed bool
				h, z, changed = load(t, h, tt.plan, 4, now, mk())
				if z.Serial() != tt.serials[i] || z.SOA().Serial != tt.serials[i] {
					t.Errorf("load %d: serial %d, want %d", i+1, z.Serial(), tt.serials[i])
				}
				if neg := z.Lookup("nx.example.test.", dns.TypeA); neg.Ns[0].(*dns.SOA).Serial != tt.serials[i] {
					t.Errorf("load %d: a negative answer carries serial %d", i+1, neg.Ns[0].(*dns.SOA).Serial)
				}
				if changed != tt.changed[i] {
					t.Errorf("load %d: changed %v, want %v", i+1, changed, tt.changed[i])
				}
			}
		})
	}
}

func TestHistoryDeltas(t *testing.T) {
	plan := ZonePlan{Serial: SerialIncrement, Transfer: true}
	now := time.Now()
	h, _, _ := load(t, nil, plan, 2, now, zoneOf(t, 10, "www 300 IN A 192.0.2.10", "old 300 IN TXT \"x\""))
	h, _, _ = load(t, h, plan, 2, now, zoneOf(t, 10, "www 300 IN A 192.0.2.10", "www 300 IN A 192.0.2.11"))
	zh := h.zones["example.test."]
	if len(zh.deltas) != 1 {
		t.Fatalf("%d deltas, want 1", len(zh.deltas))
	}
	d := zh.deltas[0]
	if d.From.Serial != 10 || d.To.Serial != 11 {
		t.Errorf("delta %d to %d, want 10 to 11", d.From.Serial, d.To.Serial)
	}
	if got, want := strs(d.Deleted), []string{"old.example.test.\t300\tIN\tTXT\t\"x\""}; !slices.Equal(got, want) {
		t.Errorf("deleted %q, want %q", got, want)
	}
	if got, want := strs(d.Added), []string{"www.example.test.\t300\tIN\tA\t192.0.2.11"}; !slices.Equal(got, want) {
		t.Errorf("added %q, want %q", got, want)
	}
	// Two more changes: the history keeps the last two.
	h, _, _ = load(t, h, plan, 2, now, zoneOf(t, 10, "www 300 IN A 192.0.2.11"))
	h, _, _ = load(t, h, plan, 2, now, zoneOf(t, 10, "www 300 IN A 192.0.2.12"))
	zh = h.zones["example.test."]
	var got [][2]uint32
	for _, d := range zh.deltas {
		got = append(got, [2]uint32{d.From.Serial, d.To.Serial})
	}
	if want := [][2]uint32{{11, 12}, {12, 13}}; !slices.Equal(got, want) {
		t.Errorf("deltas %v, want %v", got, want)
	}
	x := &zoneXfr{zone: zh.zone, deltas: zh.deltas}
	for _, tt := range []struct {
		have uint32
		want int // changes in the chain; 0: none (AXFR)
	}{{11, 2}, {12, 1}, {10, 0}, {13, 0}, {9, 0}} {
		if got := len(x.chain(tt.have)); got != tt.want {
			t.Errorf("chain from %d: %d changes, want %d", tt.have, got, tt.want)
		}
	}
}

func TestHistoryFileSerial(t *testing.T) {
	plan := ZonePlan{Serial: SerialFile, Transfer: true}
	plans := map[string]ZonePlan{"example.test.": plan}
	now := time.Now()
	h1, _, _ := load(t, nil, plan, 4, now, zoneOf(t, 10, "www 300 IN A 192.0.2.10"))
	h2, _, _ := load(t, h1, plan, 4, now, zoneOf(t, 10, "www 300 IN A 192.0.2.11"))
	if got := h2.FileSerialStuck(h1, plans); !slices.Equal(got, []string{"example.test."}) {
		t.Errorf("FileSerialStuck = %v, want example.test.", got)
	}
	h3, z, changed := load(t, h2, plan, 4, now, zoneOf(t, 11, "www 300 IN A 192.0.2.11"))
	if !changed || z.Serial() != 11 || len(h3.zones["example.test."].deltas) != 1 || h3.FileSerialStuck(h2, plans) != nil {
		t.Errorf("a raised serial: changed %v, serial %d, deltas %d", changed, z.Serial(), len(h3.zones["example.test."].deltas))
	}
	// A zone neither transferred nor given a serial mode is served as loaded.
	raw := zoneOf(t, 10)
	_, z, _ = load(t, h3, ZonePlan{}, 4, now, raw)
	if z != raw {
		t.Error("a zone without transfers or serial mode was copied")
	}
}

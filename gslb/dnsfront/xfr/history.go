package xfr

import (
	"time"

	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// Delta is one change of a zone: the records a load removed and added,
// between the SOA served before it and the SOA served after.
type Delta struct {
	From, To       *dns.SOA
	Deleted, Added []dns.RR
}

// ZonePlan is what a History needs to know of a zone's settings.
type ZonePlan struct {
	Serial   string // SerialFile (or ""), SerialUnixtime, SerialIncrement
	Transfer bool   // transferred: keep its changes for IXFR
}

// Change is a zone whose serial a load changed: the secondaries are to be
// told.
type Change struct {
	Zone *zones.Zone
}

// History is what transfers remember from one load to the next: each
// zone as last served and its recent changes. It is immutable: Next
// returns the history after a load, which the caller keeps only once the
// load serves, so a failed reload leaves no trace.
type History struct {
	zones map[string]*zoneHistory // by origin
}

type zoneHistory struct {
	zone   *zones.Zone // as served, its serial set
	deltas []Delta     // oldest first; the last ends at zone's serial
}

// Next sets the serial of each zone of set by its plan (zones without one
// keep the file's), records what changed since the previous load in the
// zones that are transferred, keeping at most keep changes each, and
// returns the history after this load, the set to serve and the zones
// whose serial changed. now is the time of the load (SerialUnixtime).
func (h *History) Next(set *zones.Set, plans map[string]ZonePlan, keep int, now time.Time) (*History, *zones.Set, []Change, error) {
	next := &History{zones: map[string]*zoneHistory{}}
	var (
		served  []*zones.Zone
		changes []Change
		swapped bool
	)
	for _, z := range set.Zones() {
		plan := plans[z.Origin()]
		var prev *zoneHistory
		if h != nil {
			prev = h.zones[z.Origin()]
		}
		zh := step(prev, z, plan, keep, now)
		next.zones[z.Origin()] = zh
		served = append(served, zh.zone)
		swapped = swapped || zh.zone != z
		if prev == nil || zh.zone.Serial() != prev.zone.Serial() {
			changes = append(changes, Change{Zone: zh.zone})
		}
	}
	if !swapped {
		return next, set, changes, nil
	}
	out, err := zones.NewSet(served...)
	if err != nil {
		return nil, nil, nil, err
	}
	return next, out, changes, nil
}

// step is one zone's load: its serial, and its change recorded.
func step(prev *zoneHistory, z *zones.Zone, plan ZonePlan, keep int, now time.Time) *zoneHistory {
	if prev == nil {
		serial := z.Serial()
		if plan.Serial == SerialUnixtime {
			serial = max(serial, uint32(now.Unix()))
		}
		return &zoneHistory{zone: z.WithSerial(serial)}
	}
	if plan.Serial == "" || plan.Serial == SerialFile {
		if !plan.Transfer {
			return &zoneHistory{zone: z}
		}
		if z.Serial() == prev.zone.Serial() {
			// The file's serial did not move: whatever changed, the
			// secondaries would not ask, so no change is recorded.
			return &zoneHistory{zone: z, deltas: prev.deltas}
		}
	}
	deleted, added := zones.Diff(prev.zone, z)
	changed := len(deleted)+len(added) > 0 || !zones.SameSOA(prev.zone.SOA(), z.SOA())
	serial := z.Serial()
	switch plan.Serial {
	case SerialIncrement:
		serial = prev.zone.Serial()
		if changed {
			serial++
		}
	case SerialUnixtime:
		serial = prev.zone.Serial()
		if changed {
			serial = max(serial+1, uint32(now.Unix()))
		}
	}
	zh := &zoneHistory{zone: z.WithSerial(serial), deltas: prev.deltas}
	if serial == prev.zone.Serial() || !plan.Transfer {
		return zh
	}
	d := Delta{From: prev.zone.SOA(), To: zh.zone.SOA(), Deleted: deleted, Added: added}
	zh.deltas = append(append(make([]Delta, 0, keep), tail(prev.deltas, keep-1)...), d)
	return zh
}

// tail returns the last n of ds.
func tail(ds []Delta, n int) []Delta {
	if n <= 0 {
		return nil
	}
	if len(ds) > n {
		return ds[len(ds)-n:]
	}
	return ds
}

// FileSerialStuck reports zones whose data changed while the serial in
// their file did not (SerialFile): secondaries will not notice. The node
// logs them.
func (h *History) FileSerialStuck(prev *History, plans map[string]ZonePlan) []string {
	if prev == nil {
		return nil
	}
	var out []string
	for origin, zh := range h.zones {
		p := prev.zones[origin]
		plan := plans[origin]
		if p == nil || !plan.Transfer || (plan.Serial != "" && plan.Serial != SerialFile) || zh.zone.Serial() != p.zone.Serial() {
			continue
		}
		if d, a := zones.Diff(p.zone, zh.zone); len(d)+len(a) > 0 {
			out = append(out, origin)
		}
	}
	return out
}

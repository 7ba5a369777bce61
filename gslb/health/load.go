package health

import (
	"math"
	"net/netip"
	"time"
)

// Load units: what a forwarder's target_load and max_load count.
const (
	UnitConnections = "connections" // connections open at once
	UnitRPS         = "rps"         // requests (tcp, tls, udp: new connections or flows) per second
)

// Load is one forwarder listener's load report, as a DNS node holds it:
// what it carries now and what the operator says it can carry. Load,
// Target and Max are in Unit.
type Load struct {
	Forwarder string       // the forwarder's cluster name
	Region    string       // the forwarder's region
	Listener  string       // the listener's name in the forwarder's configuration
	VIPs      []netip.Addr // the addresses the listener fronts: the targets of the DNS records
	Unit      string       // UnitConnections or UnitRPS
	Load      float64      // now, in Unit
	Target    float64      // the load it should stay under
	Max       float64      // the load it must not pass
	// What the forwarder measured besides, shown to operators.
	Active      float64       // connections open
	Rate        float64       // requests (or new connections) per second
	P99         time.Duration // of the requests of the last report interval; 0 when unknown
	BackendsUp  int           // backends available
	BackendsAll int           // backends configured
	// Age is how old the report was when the DNS node last published it,
	// by the DNS node's own clock (never the forwarder's).
	Age time.Duration
}

// Valid reports whether l's numbers make sense: finite, not negative,
// and a max above the target. Reports that do not are ignored.
func (l *Load) Valid() bool {
	for _, v := range []float64{l.Load, l.Target, l.Max, l.Active, l.Rate} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return false
		}
	}
	return l.Target > 0 && l.Max > l.Target
}

// Loads are the fresh load reports of the forwarders. The slice is the
// snapshot's: read it, do not change it.
func (s *Snapshot) Loads() []Load { return s.loads }

// LoadsVersion is the Version at which the load reports were last
// published (even unchanged: every publish is one step of the engine's
// load controller); 0 before any.
func (s *Snapshot) LoadsVersion() uint64 { return s.loadsAt }

// SetLoads replaces the load reports; a publish of no reports over none
// changes nothing. The slice is kept: the caller must not change it.
func (tx *Tx) SetLoads(ls []Load) {
	if len(ls) == 0 && len(tx.next.loads) == 0 {
		return
	}
	tx.next.loads = ls
	tx.loadsSet, tx.dirty = true, true
}

// SetLoads replaces the load reports (Tx.SetLoads) and publishes.
func (s *Store) SetLoads(ls []Load) { s.Update(func(tx *Tx) { tx.SetLoads(ls) }) }

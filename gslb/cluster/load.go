package cluster

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb/health"
)

// RoleForwarder is a meridian forward in front of a region's backends: it
// reports its listeners' load to the DNS nodes.
const RoleForwarder Role = "forwarder"

// kindLoad is a forwarder's load report: every listener it fronts, sent
// whole about once a second to every DNS node.
const kindLoad byte = 7

// Load report freshness, measured on the receiver's clock as vantage
// results are: a report older than DefaultLoadStaleAfter no longer
// counts (the engine treats its region as unreported), and one older
// than loadForget is forgotten.
const (
	DefaultLoadStaleAfter = 5 * time.Second
	loadForget            = time.Minute
	// maxLoadListeners bounds a report, so that no peer makes a node
	// allocate without limit.
	maxLoadListeners = 1024
	maxLoadVIPs      = 64
)

// ListenerLoad is one listener's part of a forwarder's load report.
type ListenerLoad struct {
	Listener    string
	VIPs        []netip.Addr
	Unit        string // health.UnitConnections or health.UnitRPS
	Load        float64
	Target, Max float64
	Active      float64
	Rate        float64
	P99         time.Duration
	BackendsUp  int
	BackendsAll int
}

// LoadReport is what a forwarder sends: its name and region, and its
// listeners' loads.
type LoadReport struct {
	Forwarder string
	Region    string
	Listeners []ListenerLoad
}

// heldLoad is a forwarder's latest report and when it arrived.
type heldLoad struct {
	report LoadReport
	seen   time.Time
}

func encodeLoad(r LoadReport) []byte {
	w := header(kindLoad)
	w.str(r.Forwarder)
	w.str(r.Region)
	w.uvarint(uint64(len(r.Listeners)))
	for _, l := range r.Listeners {
		w.str(l.Listener)
		w.str(l.Unit)
		w.uvarint(uint64(len(l.VIPs)))
		for _, a := range l.VIPs {
			b, _ := a.MarshalBinary()
			w.bytes(b)
		}
		for _, f := range []float64{l.Load, l.Target, l.Max, l.Active, l.Rate} {
			w.uvarint(math.Float64bits(f))
		}
		w.uvarint(uint64(max(l.P99, 0) / time.Microsecond))
		w.uvarint(uint64(max(l.BackendsUp, 0)))
		w.uvarint(uint64(max(l.BackendsAll, 0)))
	}
	return w.b
}

func decodeLoad(r *reader) (LoadReport, error) {
	rep := LoadReport{Forwarder: r.str(), Region: r.str()}
	n := r.uvarint()
	if n > maxLoadListeners || n > uint64(len(r.b)) {
		return rep, errMalformed
	}
	for range n {
		l := ListenerLoad{Listener: r.str(), Unit: r.str()}
		nv := r.uvarint()
		if nv > maxLoadVIPs || nv > uint64(len(r.b)) {
			return rep, errMalformed
		}
		for range nv {
			var a netip.Addr
			if err := a.UnmarshalBinary(r.bytes()); err != nil {
				return rep, fmt.Errorf("%w: vip: %v", errMalformed, err)
			}
			l.VIPs = append(l.VIPs, a)
		}
		for _, f := range []*float64{&l.Load, &l.Target, &l.Max, &l.Active, &l.Rate} {
			*f = math.Float64frombits(r.uvarint())
		}
		l.P99 = time.Duration(min(r.uvarint(), uint64(time.Hour/time.Microsecond))) * time.Microsecond
		l.BackendsUp = int(min(r.uvarint(), 1<<20))
		l.BackendsAll = int(min(r.uvarint(), 1<<20))
		rep.Listeners = append(rep.Listeners, l)
	}
	return rep, r.err
}

// SendLoad sends this forwarder's report to every live DNS node, in a UDP
// packet when it fits one (a lost one is made good by the next report a
// second later), else over TCP.
func (n *Node) SendLoad(r LoadReport) {
	r.Forwarder = n.cfg.Name
	msg := encodeLoad(r)
	for _, to := range n.alive(RoleDNS) {
		if len(msg) > maxPacket {
			n.enqueue(to, msg)
			continue
		}
		if err := n.ml.SendBestEffort(to, msg); err != nil {
			n.log.Debug("send load", "to", to.Name, "err", err)
		}
	}
}

// mergeLoad keeps a forwarder's report, stamped with this node's clock.
// Listeners with absurd numbers (negative, not finite, max not above
// target) are dropped, with a warning when a forwarder starts sending
// them.
func (n *Node) mergeLoad(r LoadReport, now time.Time) {
	if r.Forwarder == "" || r.Forwarder == n.cfg.Name {
		return
	}
	kept := r.Listeners[:0:0]
	var bad []string
	for _, l := range r.Listeners {
		hl := health.Load{Load: l.Load, Target: l.Target, Max: l.Max, Active: l.Active, Rate: l.Rate}
		if !hl.Valid() || (l.Unit != health.UnitConnections && l.Unit != health.UnitRPS) {
			bad = append(bad, l.Listener)
			continue
		}
		kept = append(kept, l)
	}
	r.Listeners = kept
	n.mu.Lock()
	old, had := n.loads[r.Forwarder]
	n.loads[r.Forwarder] = heldLoad{report: r, seen: now}
	warned := n.loadWarned[r.Forwarder]
	n.loadWarned[r.Forwarder] = len(bad) > 0
	n.mu.Unlock()
	if len(bad) > 0 && !warned {
		n.log.Warn("ignoring load reports with absurd values (negative, not finite, max_load not above target_load, or an unknown unit)",
			"forwarder", r.Forwarder, "listeners", strings.Join(bad, ","))
	}
	if !had || old.report.Region != r.Region {
		n.log.Info("forwarder reporting load", "forwarder", r.Forwarder, "region", r.Region, "listeners", len(kept))
	}
}

// ForwarderLoad is a forwarder's latest report as a DNS node holds it.
type ForwarderLoad struct {
	LoadReport
	Age   time.Duration // since it arrived, by this node's clock
	Stale bool          // older than the stale limit: not counted
}

// Loads returns the forwarders' latest reports, by name, and forgets
// those not heard of for a minute.
func (n *Node) Loads(now time.Time, staleAfter time.Duration) []ForwarderLoad {
	if staleAfter <= 0 {
		staleAfter = DefaultLoadStaleAfter
	}
	n.mu.Lock()
	out := make([]ForwarderLoad, 0, len(n.loads))
	for name, h := range n.loads {
		age := now.Sub(h.seen)
		if age > loadForget {
			delete(n.loads, name)
			continue
		}
		out = append(out, ForwarderLoad{LoadReport: h.report, Age: age, Stale: age > staleAfter})
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b ForwarderLoad) int { return strings.Compare(a.Forwarder, b.Forwarder) })
	return out
}

// freshLoads are the fresh reports as the health store holds them.
func (n *Node) freshLoads(now time.Time, staleAfter time.Duration) []health.Load {
	var out []health.Load
	for _, f := range n.Loads(now, staleAfter) {
		if f.Stale {
			continue
		}
		for _, l := range f.Listeners {
			out = append(out, health.Load{Forwarder: f.Forwarder, Region: f.Region, Listener: l.Listener, VIPs: l.VIPs,
				Unit: l.Unit, Load: l.Load, Target: l.Target, Max: l.Max, Active: l.Active, Rate: l.Rate, P99: l.P99,
				BackendsUp: l.BackendsUp, BackendsAll: l.BackendsAll, Age: f.Age})
		}
	}
	return out
}

// forgetLoad drops the report of a forwarder that left or failed: its
// region is unreported at once.
func (n *Node) forgetLoad(m *memberlist.Node) {
	n.mu.Lock()
	delete(n.loads, m.Name)
	delete(n.loadWarned, m.Name)
	n.mu.Unlock()
}

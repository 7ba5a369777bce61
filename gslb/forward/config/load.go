package config

import (
	"cmp"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/internal/gossipkey"
	"github.com/meridian-gslb/meridian/internal/loopback"
)

// Load reporting defaults.
const (
	DefaultLoadUnit       = "rps"       // listener.load_unit
	DefaultReportInterval = time.Second // cluster.report_interval
)

var loadUnits = []string{"rps", "connections"}

// ForwardCluster is [cluster]: the forwarder's membership of the DNS
// nodes' gossip cluster, over which it reports its listeners' load.
// Without bind it reports nothing.
type ForwardCluster struct {
	Name      string   `toml:"name"`      // unique in the cluster; the host name when empty
	Region    string   `toml:"region"`    // the region it serves, as the DNS nodes' [[region]] names it
	Bind      string   `toml:"bind"`      // host:port for gossip (UDP and TCP); empty: no reports
	Advertise string   `toml:"advertise"` // host:port the others reach it at, when not bind
	Seeds     []string `toml:"seeds"`     // host:port of DNS nodes to join through
	KeyFile   string   `toml:"key_file"`  // the cluster's gossip keys, base64, one per line
	Insecure  bool     `toml:"insecure"`  // allow gossip in clear beyond loopback
	// ReportInterval is how often the load is reported.
	ReportInterval Duration `toml:"report_interval"`

	Keys [][]byte `toml:"-"` // read from KeyFile by validation
}

// Enabled reports whether the forwarder joins a cluster.
func (c ForwardCluster) Enabled() bool { return c.Bind != "" }

// ListenerLoad is a listener's capacity, which the forwarder reports to
// the DNS nodes with its load when it is a cluster member.
type ListenerLoad struct {
	// TargetLoad is the load the listener should stay under, MaxLoad the
	// load it must not pass, in LoadUnit: "rps" (requests per second on
	// http and https, new connections or flows per second on tcp, tls
	// and udp) or "connections" (open at once).
	TargetLoad *float64 `toml:"target_load"`
	MaxLoad    *float64 `toml:"max_load"`
	LoadUnit   string   `toml:"load_unit"`
	// VIPs are the addresses clients reach the listener at, as the DNS
	// records answer them; the listen address when it names one.
	VIPs []string `toml:"vips"`

	VIPAddrs []netip.Addr `toml:"-"` // VIPs, parsed (or the listen address)
}

// Reports reports whether the listener's load is reported.
func (l *ListenerLoad) Reports() bool { return l.TargetLoad != nil && l.MaxLoad != nil }

func (c *ForwardCluster) setDefaults() {
	if c.Enabled() && c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	setDuration(&c.ReportInterval, DefaultReportInterval)
}

// validateLoad checks [cluster] and the listeners' load keys.
func (f *Forward) validateLoad(v *validator) {
	f.Cluster.validate(v, f.ResolvePath)
	for i := range f.Listeners {
		f.Listeners[i].validateLoad(v, "listener["+strconv.Itoa(i)+"]")
	}
}

func (c *ForwardCluster) validate(v *validator, resolve func(string) string) {
	if !c.Enabled() {
		if len(c.Seeds) > 0 || c.KeyFile != "" || c.Region != "" {
			v.fail("cluster.bind", "is needed to join a cluster (seeds, key_file or region are set)")
		}
		return
	}
	if c.Region == "" {
		v.fail("cluster.region", "missing: the region this forwarder serves, as the DNS nodes name it")
	}
	for key, addr := range map[string]string{"cluster.bind": c.Bind, "cluster.advertise": c.Advertise} {
		if _, _, err := net.SplitHostPort(addr); addr != "" && err != nil {
			v.fail(key, "%q is not host:port", addr)
		}
	}
	if len(c.Seeds) == 0 {
		v.fail("cluster.seeds", "missing: a DNS node to join through")
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			v.fail("cluster.seeds", "%q is not host:port", s)
		}
	}
	if c.ReportInterval.Duration < 100*time.Millisecond {
		v.fail("cluster.report_interval", "must be at least 100ms, got %s", c.ReportInterval)
	}
	if c.KeyFile == "" && !c.Insecure {
		if a := loopback.Beyond(append([]string{c.Bind, c.Advertise}, c.Seeds...)...); a != "" {
			v.fail("cluster.key_file", "gossip on %s would be in clear: set key_file, or insecure = true to accept the risk", a)
		}
	}
	if c.KeyFile != "" {
		b, err := os.ReadFile(resolve(c.KeyFile))
		if err != nil {
			v.fail("cluster.key_file", "%v", err)
			return
		}
		if c.Keys, err = gossipkey.ParseFile(b); err != nil {
			v.fail("cluster.key_file", "%s: %v", c.KeyFile, err)
		}
	}
}

// validateLoad checks the listener's load keys at key ("listener[0]"):
// both figures or neither, finite, positive, max above target.
func (l *ForwardListener) validateLoad(v *validator, key string) {
	ll := &l.ListenerLoad
	if (ll.TargetLoad == nil) != (ll.MaxLoad == nil) {
		v.fail(key+".max_load", "target_load and max_load go together: set both, or neither")
		return
	}
	if !ll.Reports() {
		for _, k := range []string{"load_unit", "vips"} {
			if v.has(key + "." + k) {
				v.fail(key+"."+k, "is for load reports: set target_load and max_load too")
			}
		}
		return
	}
	ll.LoadUnit = strings.ToLower(cmp.Or(ll.LoadUnit, DefaultLoadUnit))
	if !slices.Contains(loadUnits, ll.LoadUnit) {
		v.fail(key+".load_unit", "must be rps or connections, got %q", ll.LoadUnit)
	}
	t, m := *ll.TargetLoad, *ll.MaxLoad
	for k, x := range map[string]float64{"target_load": t, "max_load": m} {
		if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
			v.fail(key+"."+k, "must be a positive number, got %v", x)
		}
	}
	if m <= t {
		v.fail(key+".max_load", "must be above target_load (%v), got %v", t, m)
	}
	for _, s := range ll.VIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			v.fail(key+".vips", "%q is not an IP address", s)
			continue
		}
		ll.VIPAddrs = append(ll.VIPAddrs, a.Unmap())
	}
	if len(ll.VIPs) == 0 {
		if ap, err := netip.ParseAddrPort(l.Listen); err == nil && !ap.Addr().IsUnspecified() {
			ll.VIPAddrs = []netip.Addr{ap.Addr().Unmap()}
		}
	}
}

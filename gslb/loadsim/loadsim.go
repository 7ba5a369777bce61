package loadsim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/miekg/dns"
)

// Region is a simulated region: one pool of one address, and what its
// forwarder says it can carry, in requests per second.
type Region struct {
	Name        string
	Target, Max float64
}

// Phase is a stretch of the simulation with one total demand.
type Phase struct {
	From   int     // the second it starts
	Demand float64 // requests per second, over all resolvers
}

// Config is a simulation.
type Config struct {
	Regions   []Region // in the record's preference order (failover)
	Resolvers int      // distinct client /24s, each one resolver
	TTL       int      // seconds a resolver keeps an answer
	Seconds   int
	Phases    []Phase
	Seed      uint64 // for the resolvers' cache expiries and demands
	Policy    gslb.RegionPolicy
	Load      gslb.LoadOptions
}

// Step is one simulated second.
type Step struct {
	Second int
	Demand float64
	Load   []float64 // by region, requests per second
	Share  []float64 // by region, as the engine holds it after this second's report
	Flips  int       // resolvers whose answer changed region this second
}

type resolver struct {
	client  gslb.Client
	weight  float64 // its part of the total demand
	expires int     // the second its cached answer expires
	offset  int     // when, within a TTL, its first answer expires
	region  int     // index in Config.Regions; -1 before its first answer
}

// Run simulates cfg and returns one Step per second.
func Run(cfg Config) ([]Step, error) {
	rec, err := record(cfg)
	if err != nil {
		return nil, err
	}
	store := health.NewStore()
	eng, err := gslb.New([]*gslb.Record{rec}, gslb.HealthOf(store), gslb.Options{UnknownIsUp: true, Load: cfg.Load})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	store.OnPublish(eng.Refresh)
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	rs := make([]resolver, cfg.Resolvers)
	total := 0.0
	for i := range rs {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		rs[i] = resolver{client: gslb.Client{Addr: a, Prefix: 24}, weight: 0.5 + rng.Float64(), offset: 1 + rng.IntN(cfg.TTL), region: -1}
		total += rs[i].weight
	}
	var sc gslb.Scratch
	steps := make([]Step, 0, cfg.Seconds)
	for t := range cfg.Seconds {
		st := Step{Second: t, Demand: demandAt(cfg.Phases, t), Load: make([]float64, len(cfg.Regions))}
		for i := range rs {
			r := &rs[i]
			if t >= r.expires {
				c := r.client
				d := eng.Decide(rec, &c, &sc)
				next := regionIndex(rec, d.Pool)
				if r.region >= 0 && next != r.region {
					st.Flips++
				}
				r.expires = t + cfg.TTL
				if r.region < 0 { // caches warm at the start, expiring spread over a TTL
					r.expires = t + r.offset
				}
				r.region = next
			}
			if r.region >= 0 {
				st.Load[r.region] += st.Demand * r.weight / total
			}
		}
		store.SetLoads(reports(cfg.Regions, rec, st.Load))
		for _, pl := range eng.Loads(rec) {
			st.Share = append(st.Share, pl.Share)
		}
		steps = append(steps, st)
	}
	return steps, nil
}

func demandAt(phases []Phase, t int) float64 {
	d := 0.0
	for _, p := range phases {
		if t >= p.From {
			d = p.Demand
		}
	}
	return d
}

// record is the simulated record: one pool per region, one address each.
func record(cfg Config) (*gslb.Record, error) {
	if len(cfg.Regions) == 0 || cfg.Resolvers < 1 || cfg.Resolvers > 1<<16 || cfg.TTL < 1 {
		return nil, fmt.Errorf("loadsim: need regions, 1 to 65536 resolvers and a TTL of at least 1")
	}
	policy := cfg.Policy
	if policy == nil {
		policy = gslb.Failover{}
	}
	rec := &gslb.Record{Name: "app.example.test.", Type: dns.TypeA, TTL: uint32(cfg.TTL), Regions: policy,
		Targets: gslb.All{}, Load: gslb.LoadHeadroom}
	for i, r := range cfg.Regions {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		rec.Pools = append(rec.Pools, &gslb.Pool{Name: r.Name, Region: &gslb.Region{Name: r.Name}, Weight: 1, MinHealthy: 1,
			Targets: []gslb.Target{{ID: r.Name + "/" + addr.String(), Addr: addr, Weight: 1}}})
	}
	return rec, nil
}

func regionIndex(rec *gslb.Record, p *gslb.Pool) int {
	for i, q := range rec.Pools {
		if q == p {
			return i
		}
	}
	return -1
}

// reports are the loads as each region's forwarder reports them.
func reports(regions []Region, rec *gslb.Record, loads []float64) []health.Load {
	out := make([]health.Load, len(regions))
	for i, r := range regions {
		out[i] = health.Load{Forwarder: "fwd-" + r.Name, Region: r.Name, Listener: "web", Unit: health.UnitRPS,
			VIPs: []netip.Addr{rec.Pools[i].Targets[0].Addr}, Load: loads[i], Rate: loads[i], Target: r.Target, Max: r.Max}
	}
	return out
}

// WriteTable writes every n-th step (and every step where a phase
// starts) as a Markdown table: the curve docs/load.md shows.
func WriteTable(w io.Writer, cfg Config, steps []Step, every int) error {
	var b strings.Builder
	b.WriteString("| second | demand |")
	for _, r := range cfg.Regions {
		fmt.Fprintf(&b, " %s load | %s share |", r.Name, r.Name)
	}
	b.WriteString(" flips |\n|---:|---:|")
	for range cfg.Regions {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|\n")
	flips := 0
	for _, st := range steps {
		flips += st.Flips
		if st.Second%every != 0 && !phaseStart(cfg.Phases, st.Second) {
			continue
		}
		fmt.Fprintf(&b, "| %d | %.0f |", st.Second, st.Demand)
		for i := range cfg.Regions {
			fmt.Fprintf(&b, " %.0f | %.2f |", st.Load[i], st.Share[i])
		}
		fmt.Fprintf(&b, " %d |\n", flips)
		flips = 0
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func phaseStart(phases []Phase, t int) bool {
	for _, p := range phases {
		if p.From == t {
			return true
		}
	}
	return false
}

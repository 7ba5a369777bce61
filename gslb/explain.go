package gslb

import (
	"fmt"
	"time"
)

// Explanation is a decision with the reasoning behind it, for `meridian
// explain` and the admin API. Building one allocates; Decide does not.
type Explanation struct {
	Record       string      `json:"record"`
	Type         uint16      `json:"type"`
	Policy       string      `json:"policy"`
	TargetPolicy string      `json:"target_policy"`
	Candidates   []Candidate `json:"candidates"` // in the order the policy tried them
	Decision     Decision    `json:"-"`
	Outcome      string      `json:"outcome"`
	Pool         string      `json:"pool,omitempty"`
	Region       string      `json:"region,omitempty"`
	Answer       []string    `json:"answer"`
	TTL          uint32      `json:"ttl"`
	Scope        int         `json:"scope"`
	// ScopeNetwork is the client's prefix of Scope bits: the clients a
	// resolver may give this answer to (RFC 7871).
	ScopeNetwork string `json:"scope_network"`
	// Geo is what each geo source says of the client, in the order they
	// are asked: the first decided (and, when it names only a region,
	// the next placed it). Empty when no source knows the client.
	Geo []GeoMatch `json:"geo,omitempty"`
	// Load says how load moved the answer, for records with load =
	// "headroom": empty when it did not.
	Load string `json:"load,omitempty"`
}

// GeoMatch is one geo source's view of a client.
type GeoMatch struct {
	Source      string  `json:"source"`  // "geo.network" (the CIDR rows) or a database file
	Network     string  `json:"network"` // the row's prefix or the database's network
	Region      string  `json:"region,omitempty"`
	Country     string  `json:"country,omitempty"`
	Continent   string  `json:"continent,omitempty"`
	Subdivision string  `json:"subdivision,omitempty"`
	Lat         float64 `json:"lat,omitempty"`
	Lon         float64 `json:"lon,omitempty"`
}

// Candidate is one pool as the decision saw it.
type Candidate struct {
	Pool       string        `json:"pool"`
	Region     string        `json:"region"`
	DistanceKm float64       `json:"distance_km,omitempty"` // from the client, when it has coordinates
	RTT        time.Duration `json:"rtt,omitempty"`         // measured, when the health view has it
	Weight     uint32        `json:"weight"`
	Healthy    int           `json:"healthy"` // usable targets that are up
	Usable     int           `json:"usable"`  // targets neither drained nor weighted 0
	Total      int           `json:"total"`
	MinHealthy int           `json:"min_healthy"`
	Drained    bool          `json:"drained"`
	Eligible   bool          `json:"eligible"`
	// Load is the pool's reported load and the share of clients it keeps,
	// for records with load = "headroom".
	Load *PoolLoad `json:"load,omitempty"`
}

// Explain decides like Decide and says why.
func (e *Engine) Explain(r *Record, c *Client) Explanation {
	ex := Explanation{Record: r.Name, Type: r.Type}
	d := e.decide(r, c, new(Scratch), &ex)
	ex.Decision = d
	ex.Outcome, ex.TTL, ex.Scope = d.Outcome.String(), d.TTL, d.Scope
	if c.Addr.IsValid() {
		if p, err := c.Addr.Prefix(d.Scope); err == nil {
			ex.ScopeNetwork = p.String()
		}
	}
	if c.geo != nil {
		for _, m := range c.geo.idx.Matches(c.Addr) {
			l := m.Location
			ex.Geo = append(ex.Geo, GeoMatch{Source: m.Source, Network: l.Network.String(), Region: l.Region, Country: l.Country,
				Continent: l.Continent, Subdivision: l.Subdivision, Lat: l.Lat, Lon: l.Lon})
		}
	}
	if d.Pool != nil {
		ex.Pool, ex.Region = d.Pool.Name, d.Pool.Region.Name
		ex.Load = loadNote(r, ex.Candidates, d.Pool.Name)
	}
	ex.Answer = []string{}
	for _, a := range d.Addrs {
		ex.Answer = append(ex.Answer, a.String())
	}
	return ex
}

func (ex *Explanation) explainPools(e *Engine, r *Record, c *Client, order []int, pools []poolPlan, weights []uint32) {
	e.mu.Lock()
	drained := e.over
	e.mu.Unlock()
	for _, i := range order {
		p := r.Pools[i]
		cand := Candidate{
			Pool:       p.Name,
			Region:     p.Region.Name,
			Weight:     weights[i],
			Healthy:    len(pools[i].healthy),
			Usable:     len(pools[i].open),
			Total:      len(p.Targets),
			MinHealthy: p.MinHealthy,
			Drained:    drained.regions[p.Region.Name],
			Eligible:   pools[i].eligible,
		}
		if r.Load == LoadHeadroom {
			l := pools[i].load
			cand.Load = &l
		}
		if c.HasCoords {
			cand.DistanceKm = distanceKm(c.Lat, c.Lon, p.Region.Lat, p.Region.Lon)
		}
		if e.health != nil {
			if rtt, ok := e.health.RTT(p.Region.Name); ok {
				cand.RTT = rtt
			}
		}
		ex.Candidates = append(ex.Candidates, cand)
	}
}

// loadNote explains an answer load moved: the client's first eligible
// pool keeps only part of its subnets, and not this client's.
func loadNote(r *Record, cands []Candidate, answered string) string {
	if r.Load != LoadHeadroom {
		return ""
	}
	for _, c := range cands {
		if !c.Eligible {
			continue
		}
		if c.Pool == answered || c.Load == nil {
			return ""
		}
		return fmt.Sprintf("moved from %s (%s): it keeps %.0f%% of client subnets (load %.4g of target %.4g, max %.4g %s), not this one",
			c.Pool, c.Region, c.Load.Share*100, c.Load.Smoothed, c.Load.Target, c.Load.Max, c.Load.Unit)
	}
	return ""
}

package whatif

import (
	"cmp"
	"slices"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

// Report is a simulation's difference, record by record.
type Report struct {
	Scenario Scenario       `json:"scenario"`
	Clients  int            `json:"clients"`        // how many clients were decided
	Source   string         `json:"clients_source"` // what they were
	Records  []RecordReport `json:"records"`
	// Guards are the guard rules the scenario breaks (worse than now and
	// past the limit), empty when it breaks none.
	Guards []Violation `json:"guards_broken"`
	// Load is, for each region the scenario gives a load, the shares its
	// pools settled at; absent without one.
	Load []LoadResult `json:"load,omitempty"`
}

// RecordReport is one record's difference.
type RecordReport struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Policy string `json:"policy"`
	// Moves are the clients whose answer changes region or outcome,
	// grouped by from and to, largest first. Empty for a record weighted
	// at random, whose clients have no region of their own: its shares,
	// by pool ("canary (us-east)"), say it all.
	Moves  []Move  `json:"moves"`
	Shares []Share `json:"shares"`
	// Unhealthy says how the record answers clients left with no healthy
	// pool after the change; nil when every client has one.
	Unhealthy *Unhealthy `json:"no_healthy_answer,omitempty"`
}

// End is where a client's answer comes from: a region, and the outcome
// (answered, fallback, fail-open, servfail, nodata).
type End struct {
	Region  string `json:"region,omitempty"`
	Outcome string `json:"outcome"`
}

func (e End) String() string {
	switch {
	case e.Region == "":
		return e.Outcome
	case e.Outcome == "answered":
		return e.Region
	}
	return e.Region + " (" + e.Outcome + ")"
}

// Move is a group of clients whose answer goes from one end to another.
type Move struct {
	From    End      `json:"from"`
	To      End      `json:"to"`
	Clients int      `json:"clients"`
	Weight  float64  `json:"weight"`   // their queries (or count)
	Sample  []string `json:"examples"` // the first MaxExamples, in walk order
}

// Share is a region's part of the answers (weighted), before and after;
// Region is an outcome's name for answers with no region.
type Share struct {
	Region string  `json:"region"`
	Before float64 `json:"before"`
	After  float64 `json:"after"`
}

// Unhealthy is a record left with no healthy answer for some clients.
type Unhealthy struct {
	Fail    string `json:"fail"` // fail-open, servfail or nodata
	TTL     uint32 `json:"ttl"`
	Clients int    `json:"clients"`
}

// MaxExamples bounds the clients a move lists; the count covers all.
const MaxExamples = 20

// Simulate decides every dynamic record of base for each client, under
// base's state and under the scenario, and reports the difference.
// base is not changed; guards are checked against the scenario.
func Simulate(base *gslb.Engine, s Scenario, clients Clients, guards []Guard) (*Report, error) {
	ch, err := resolve(base, s)
	if err != nil {
		return nil, err
	}
	before := base.Fork(forced{base: base.Health()})
	after := ch.apply(base)
	rep := &Report{Scenario: s, Source: clients.Source, Records: []RecordReport{}, Guards: []Violation{}, Load: ch.settled}
	recs := base.AllRecords()
	tallies := make([]tally, len(recs))
	for i, r := range recs {
		tallies[i] = newTally(r)
	}
	var s1, s2 gslb.Scratch
	var cl gslb.Client // one for the walk: a pointer to it escapes
	for c := range clients.Seq {
		rep.Clients++
		for i, r := range recs {
			t := &tallies[i]
			if t.random {
				continue
			}
			cl = c.Client // Decide may resolve it
			d1 := before.Decide(r, &cl, &s1)
			cl = c.Client
			d2 := after.Decide(r, &cl, &s2)
			t.add(c, d1, d2)
		}
	}
	for i, r := range recs {
		t := &tallies[i]
		if t.random {
			t.randomShares(before, after)
		}
		rep.Records = append(rep.Records, t.report(r))
	}
	rep.Guards = Check(guards, before, after, ch.drainedByName, true)
	return rep, nil
}

// tally collects one record's difference as the clients go by.
type tally struct {
	rec       *gslb.Record
	random    bool // weighted at random: shares from the weights, no moves
	moves     map[[2]End]*Move
	before    map[string]float64
	after     map[string]float64
	total     float64
	unhealthy *Unhealthy
}

func newTally(r *gslb.Record) tally {
	_, random := r.Regions.(gslb.WeightedPools)
	random = random && !r.Regions.(gslb.WeightedPools).Stable
	return tally{rec: r, random: random, moves: map[[2]End]*Move{}, before: map[string]float64{}, after: map[string]float64{}}
}

func endOf(d gslb.Decision) End {
	e := End{Outcome: d.Outcome.String()}
	if d.Pool != nil {
		e.Region = d.Pool.Region.Name
	}
	return e
}

func (t *tally) add(c Client, d1, d2 gslb.Decision) {
	from, to := endOf(d1), endOf(d2)
	t.before[shareKey(from)] += c.Weight
	t.after[shareKey(to)] += c.Weight
	t.total += c.Weight
	if d2.Outcome != gslb.Answered && d2.Outcome != gslb.Fallback {
		if t.unhealthy == nil {
			t.unhealthy = &Unhealthy{Fail: d2.Outcome.String(), TTL: d2.TTL}
		}
		t.unhealthy.Clients++
	}
	if from == to {
		return
	}
	m := t.moves[[2]End{from, to}]
	if m == nil {
		m = &Move{From: from, To: to, Sample: []string{}}
		t.moves[[2]End{from, to}] = m
	}
	m.Clients++
	m.Weight += c.Weight
	if len(m.Sample) < MaxExamples {
		m.Sample = append(m.Sample, c.Name())
	}
}

// shareKey is the region an answer counts for, or its outcome when it
// has no address.
func shareKey(e End) string { return cmp.Or(e.Region, e.Outcome) }

func (t *tally) report(r *gslb.Record) RecordReport {
	out := RecordReport{Name: r.Name, Type: dns.TypeToString[r.Type], Policy: r.Regions.Name(), Moves: []Move{}, Shares: []Share{}, Unhealthy: t.unhealthy}
	for _, m := range t.moves {
		out.Moves = append(out.Moves, *m)
	}
	slices.SortFunc(out.Moves, func(a, b Move) int {
		return cmp.Or(cmp.Compare(b.Clients, a.Clients), cmp.Compare(a.From.String(), b.From.String()), cmp.Compare(a.To.String(), b.To.String()))
	})
	keys := map[string]bool{}
	for k := range t.before {
		keys[k] = true
	}
	for k := range t.after {
		keys[k] = true
	}
	for k := range keys {
		sh := Share{Region: k}
		if t.total > 0 {
			sh.Before, sh.After = t.before[k]/t.total, t.after[k]/t.total
		}
		out.Shares = append(out.Shares, sh)
	}
	slices.SortFunc(out.Shares, func(a, b Share) int { return cmp.Or(cmp.Compare(b.Before, a.Before), cmp.Compare(a.Region, b.Region)) })
	return out
}

// randomShares fills the shares of a record weighted at random from the
// pool weights and eligibility of each side: the first pool is drawn by
// weight, and when it cannot answer the next eligible one in descending
// weight does (gslb.WeightedPools).
func (t *tally) randomShares(before, after *gslb.Engine) {
	t.total = 1
	for _, side := range []struct {
		e   *gslb.Engine
		out map[string]float64
	}{{before, t.before}, {after, t.after}} {
		shares, fail := weightedShares(t.rec, side.e.Pools(t.rec))
		for k, v := range shares {
			side.out[k] += v
		}
		if side.e == after && fail != nil {
			t.unhealthy = fail
		}
	}
}

// weightedShares is the expected share of each region of a record
// weighted at random, from its pools as e's plan sees them, and how it
// fails when no pool is eligible.
func weightedShares(r *gslb.Record, pools []gslb.Candidate) (map[string]float64, *Unhealthy) {
	order := make([]int, len(pools))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(pools[b].Weight, pools[a].Weight) })
	var total float64
	for _, p := range pools {
		total += float64(p.Weight)
	}
	out := map[string]float64{}
	draw := func(first int, p float64) {
		for _, i := range append([]int{first}, order...) {
			if pools[i].Eligible {
				out[poolLabel(pools[i])] += p
				return
			}
		}
	}
	eligible := slices.ContainsFunc(pools, func(c gslb.Candidate) bool { return c.Eligible })
	switch {
	case !eligible:
		return failShares(r, pools, order)
	case total == 0:
		draw(order[0], 1)
	default:
		for i, p := range pools {
			if p.Weight > 0 {
				draw(i, float64(p.Weight)/total)
			}
		}
	}
	return out, nil
}

// poolLabel names a pool in the shares of a record weighted at random:
// its region, and its name when that is not the region's (a canary
// beside its stable pool in one region).
func poolLabel(c gslb.Candidate) string {
	if c.Pool == c.Region {
		return c.Region
	}
	return c.Pool + " (" + c.Region + ")"
}

// failShares is where a record with no eligible pool answers: the first
// pool with usable targets when it fails open, else nowhere.
func failShares(r *gslb.Record, pools []gslb.Candidate, order []int) (map[string]float64, *Unhealthy) {
	ttl := r.TTL
	if r.FallbackTTL > 0 {
		ttl = r.FallbackTTL
	}
	switch r.Fail {
	case gslb.FailServfail:
		return map[string]float64{"servfail": 1}, &Unhealthy{Fail: "servfail", TTL: r.TTL, Clients: 1}
	case gslb.FailNoData:
		return map[string]float64{"nodata": 1}, &Unhealthy{Fail: "nodata", TTL: r.TTL, Clients: 1}
	}
	for _, i := range order {
		if pools[i].Usable > 0 {
			return map[string]float64{poolLabel(pools[i]): 1}, &Unhealthy{Fail: "fail-open", TTL: ttl, Clients: 1}
		}
	}
	return map[string]float64{"nodata": 1}, &Unhealthy{Fail: "nodata", TTL: r.TTL, Clients: 1}
}

// Violations returns the guards the scenario would break if an operator
// made it: what the admin API refuses a change for.
func Violations(base *gslb.Engine, s Scenario, guards []Guard) ([]Violation, error) {
	ch, err := resolve(base, s)
	if err != nil {
		return nil, err
	}
	if len(guards) == 0 {
		return []Violation{}, nil
	}
	return Check(guards, base.Fork(forced{base: base.Health()}), ch.apply(base), ch.drainedByName, true), nil
}

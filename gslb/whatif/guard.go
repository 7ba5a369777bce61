package whatif

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/miekg/dns"
)

// Guard is a [[guard]] table: a rule operator changes are held to. Exactly
// one of MinRegions, MaxDrainedPercent and NeverDrain is set.
type Guard struct {
	Name string `toml:"name"` // names the guard in refusals, logs and metrics
	// Record and Type select the record of MinRegions and
	// MaxDrainedPercent; Type "" means every type of the name.
	Record string `toml:"record"`
	Type   string `toml:"type"`
	// MinRegions: the record keeps at least this many regions in
	// rotation (with an eligible pool: healthy, not drained).
	MinRegions int `toml:"min_regions"`
	// Pool and MaxDrainedPercent: at most this percent of the pool's
	// targets drained (a drained region drains them all).
	Pool              string   `toml:"pool"`
	MaxDrainedPercent *float64 `toml:"max_drained_percent"`
	// NeverDrain: this region is never drained through the admin API.
	NeverDrain string `toml:"never_drain"`
}

// Problem is one invalid setting of a [[guard]]: the key under the
// table and why.
type Problem struct{ Key, Msg string }

// Validate checks the guard on its own; the configuration checks that
// the record, pool and region it names exist.
func (g *Guard) Validate() []Problem {
	var out []Problem
	if g.Name == "" {
		out = append(out, Problem{"name", "missing: every guard needs a name, which refusals and the metric show"})
	}
	kinds := 0
	if g.MinRegions != 0 {
		kinds++
		if g.MinRegions < 1 {
			out = append(out, Problem{"min_regions", fmt.Sprintf("must be 1 or more, got %d", g.MinRegions)})
		}
	}
	if g.MaxDrainedPercent != nil {
		kinds++
		if p := *g.MaxDrainedPercent; p < 0 || p >= 100 {
			out = append(out, Problem{"max_drained_percent", fmt.Sprintf("must be 0 to less than 100, got %g", p)})
		}
		if g.Pool == "" {
			out = append(out, Problem{"pool", "missing: max_drained_percent needs the pool it limits"})
		}
	}
	if g.NeverDrain != "" {
		kinds++
	}
	if kinds != 1 {
		out = append(out, Problem{"", "give exactly one of min_regions, max_drained_percent, never_drain"})
	}
	if (g.MinRegions != 0 || g.MaxDrainedPercent != nil) && g.Record == "" {
		out = append(out, Problem{"record", "missing: the record the guard is about"})
	}
	if g.Type != "" && g.Type != "A" && g.Type != "AAAA" {
		out = append(out, Problem{"type", fmt.Sprintf("must be A or AAAA (or absent: both), got %q", g.Type)})
	}
	return out
}

// Violation is a guard a change breaks.
type Violation struct {
	Guard  string `json:"guard"`
	Reason string `json:"reason"`
}

// Error is the refusal of a change that breaks guards.
func (v Violation) Error() string { return fmt.Sprintf("guard %q: %s", v.Guard, v.Reason) }

// Check returns the guards that after breaks and that are worse than in
// before: a change is refused only for what it makes worse, so an
// operator can still act while health has already broken a guard.
// drained names what the change drains (never_drain guards); operator
// is false for changes made by health, which never_drain does not bind.
func Check(guards []Guard, before, after *gslb.Engine, drained []string, operator bool) []Violation {
	out := []Violation{}
	for _, g := range guards {
		switch {
		case g.NeverDrain != "":
			if operator && slices.Contains(drained, g.NeverDrain) {
				out = append(out, Violation{g.Name, fmt.Sprintf("region %s is never drained through the API", g.NeverDrain)})
			}
		case g.MinRegions > 0:
			for _, r := range g.records(after) {
				was, now := inRotation(before, r), inRotation(after, r)
				if len(now) < g.MinRegions && len(now) < len(was) {
					out = append(out, Violation{g.Name, fmt.Sprintf("%s %s would keep %d region(s) in rotation (%s), fewer than %d",
						strings.TrimSuffix(r.Name, "."), dns.TypeToString[r.Type], len(now), orNone(now), g.MinRegions)})
				}
			}
		case g.MaxDrainedPercent != nil:
			for _, r := range g.records(after) {
				was, now := drainedPercent(before, r, g.Pool), drainedPercent(after, r, g.Pool)
				if now > *g.MaxDrainedPercent && now > was {
					out = append(out, Violation{g.Name, fmt.Sprintf("%s %s pool %s would have %.0f%% of its targets drained, more than %g%%",
						strings.TrimSuffix(r.Name, "."), dns.TypeToString[r.Type], g.Pool, now, *g.MaxDrainedPercent)})
				}
			}
		}
	}
	return out
}

// Broken returns the guards e's state breaks now, whoever broke them:
// what the metric and the log report when health takes regions out.
func Broken(guards []Guard, e *gslb.Engine) []Violation {
	out := []Violation{}
	drainedRegions, _ := e.Drains()
	for _, g := range guards {
		switch {
		case g.NeverDrain != "":
			if drainedRegions[g.NeverDrain] {
				out = append(out, Violation{g.Name, fmt.Sprintf("region %s is drained", g.NeverDrain)})
			}
		case g.MinRegions > 0:
			for _, r := range g.records(e) {
				if now := inRotation(e, r); len(now) < g.MinRegions {
					out = append(out, Violation{g.Name, fmt.Sprintf("%s %s keeps %d region(s) in rotation (%s), fewer than %d",
						strings.TrimSuffix(r.Name, "."), dns.TypeToString[r.Type], len(now), orNone(now), g.MinRegions)})
				}
			}
		case g.MaxDrainedPercent != nil:
			for _, r := range g.records(e) {
				if now := drainedPercent(e, r, g.Pool); now > *g.MaxDrainedPercent {
					out = append(out, Violation{g.Name, fmt.Sprintf("%s %s pool %s has %.0f%% of its targets drained, more than %g%%",
						strings.TrimSuffix(r.Name, "."), dns.TypeToString[r.Type], g.Pool, now, *g.MaxDrainedPercent)})
				}
			}
		}
	}
	return out
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// records are the records of e the guard is about.
func (g *Guard) records(e *gslb.Engine) []*gslb.Record {
	var out []*gslb.Record
	for _, r := range e.Records(strings.ToLower(dns.Fqdn(g.Record))) {
		if g.Type == "" || dns.TypeToString[r.Type] == g.Type {
			out = append(out, r)
		}
	}
	return out
}

// inRotation is the regions of r with an eligible pool, sorted.
func inRotation(e *gslb.Engine, r *gslb.Record) []string {
	var out []string
	for _, p := range e.Pools(r) {
		if p.Eligible && !slices.Contains(out, p.Region) {
			out = append(out, p.Region)
		}
	}
	slices.Sort(out)
	return out
}

// drainedPercent is the share of pool's targets in r that are drained.
func drainedPercent(e *gslb.Engine, r *gslb.Record, pool string) float64 {
	regions, targets := e.Drains()
	for _, p := range r.Pools {
		if p.Name != pool || len(p.Targets) == 0 {
			continue
		}
		if regions[p.Region.Name] {
			return 100
		}
		n := 0
		for _, t := range p.Targets {
			if targets[t.ID] {
				n++
			}
		}
		return 100 * float64(n) / float64(len(p.Targets))
	}
	return 0
}

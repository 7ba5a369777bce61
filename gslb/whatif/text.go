package whatif

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Describe is the scenario in the command line's words.
func (s Scenario) Describe() string {
	var parts []string
	for _, f := range []struct {
		flag string
		list []string
	}{{"down", s.Down}, {"up", s.Up}, {"drain", s.Drain}, {"undrain", s.Undrain}, {"weight", s.Weight}, {"load", s.Load}} {
		for _, v := range f.list {
			parts = append(parts, "-"+f.flag+" "+v)
		}
	}
	if len(parts) == 0 {
		return "none (the state in force)"
	}
	return strings.Join(parts, " ")
}

// WriteText prints the report for a person: per record the moves with
// their clients, the shares before and after, and what is left without
// a healthy answer; then the guards the scenario breaks.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario: %s\nclients: %d, %s\n", r.Scenario.Describe(), r.Clients, r.Source)
	writeLoads(tw, r.Load)
	for _, rec := range r.Records {
		fmt.Fprintf(tw, "\n%s %s (%s)", strings.TrimSuffix(rec.Name, "."), rec.Type, rec.Policy)
		moved := 0
		for _, m := range rec.Moves {
			moved += m.Clients
		}
		switch {
		case len(rec.Moves) > 0:
			fmt.Fprintf(tw, ": %d of %d clients move\n", moved, r.Clients)
		case changedShares(rec.Shares):
			fmt.Fprintf(tw, ": shares change\n")
		default:
			fmt.Fprintf(tw, ": no change\n")
		}
		for _, m := range rec.Moves {
			fmt.Fprintf(tw, "  %s -> %s: %d %s\n", m.From, m.To, m.Clients, plural(m.Clients, "client", "clients"))
			for _, ex := range m.Sample {
				fmt.Fprintf(tw, "    %s\n", ex)
			}
			if more := m.Clients - len(m.Sample); more > 0 {
				fmt.Fprintf(tw, "    … and %d more\n", more)
			}
		}
		if len(rec.Moves) > 0 || changedShares(rec.Shares) {
			fmt.Fprintf(tw, "  share\tbefore\tafter\n")
			for _, s := range rec.Shares {
				fmt.Fprintf(tw, "  %s\t%5.1f%%\t%5.1f%%\n", s.Region, 100*s.Before, 100*s.After)
			}
		}
		if u := rec.Unhealthy; u != nil {
			fmt.Fprintf(tw, "  no healthy answer for %d %s: %s, TTL %d\n", u.Clients, plural(u.Clients, "client", "clients"), u.Fail, u.TTL)
		}
	}
	if len(r.Guards) == 0 {
		fmt.Fprintf(tw, "\nguards: none broken\n")
	} else {
		fmt.Fprintf(tw, "\nguards broken:\n")
		for _, v := range r.Guards {
			fmt.Fprintf(tw, "  %s: %s\n", v.Guard, v.Reason)
		}
	}
	return tw.Flush()
}

func changedShares(shares []Share) bool {
	for _, s := range shares {
		if d := s.Before - s.After; d > 1e-9 || d < -1e-9 {
			return true
		}
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// writeLoads says, for each region given a load, the share its pools
// settle at and what against, or why nothing changed.
func writeLoads(w io.Writer, loads []LoadResult) {
	for _, l := range loads {
		fmt.Fprintf(w, "load: %s reports %g%% of max_load", l.Region, l.Percent)
		if l.Note != "" {
			fmt.Fprintf(w, ": %s\n", l.Note)
			continue
		}
		fmt.Fprintf(w, "; shares once the load controller has settled:\n")
		for _, p := range l.Pools {
			against := fmt.Sprintf("target assumed at %g%% of max: no load reports", p.Target)
			if !p.Assumed {
				against = fmt.Sprintf("load %g %s; reported target %g, max %g", p.Load, p.Unit, p.Target, p.Max)
			}
			fmt.Fprintf(w, "  %s keeps %.0f%% of its clients (%s)\n", strings.Replace(p.Key, "./", "/", 1), 100*p.Share, against)
		}
		if len(l.Unchanged) > 0 {
			fmt.Fprintf(w, "  unchanged, not following load: %s\n", strings.Join(l.Unchanged, ", "))
		}
	}
}

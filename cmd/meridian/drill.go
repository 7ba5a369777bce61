package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/whatif"
)

// drillSample is what the answers were at one moment of a drill: each
// record's shares per region, as the node decides them then.
type drillSample struct {
	At     time.Duration             `json:"at_ns"`
	Phase  string                    `json:"phase"` // before, drained, restored
	Shares map[string][]whatif.Share `json:"shares"`
}

// drill drains the named regions or targets for real through the normal
// admin path (guards apply), records the answers every interval for the
// duration, and then restores what it drained: always, when the time is
// up, on an error, and on SIGINT or SIGTERM (ctx).
func drill(ctx context.Context, a simulateArgs, token string, stdout, stderr io.Writer) int {
	base := strings.TrimSuffix(a.server, "/")
	already, err := drainedNow(base, token)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: drill: %v\n", err)
		return 1
	}
	start := time.Now()
	var samples []drillSample
	record := func(phase string) {
		s, err := sampleShares(base, token)
		if err != nil {
			fmt.Fprintf(stderr, "meridian: drill: recording the answers: %v\n", err)
			return
		}
		s.At, s.Phase = time.Since(start).Round(time.Millisecond), phase
		samples = append(samples, s)
		if !a.json {
			printSample(stdout, s)
		}
	}
	record("before")
	var drained []string
	defer func() { // restore, whatever ended the drill
		for _, name := range drained {
			if err := adminCall(context.Background(), http.MethodDelete, drainURL(base, name), token, nil, nil); err != nil {
				fmt.Fprintf(stderr, "meridian: drill: RESTORE FAILED for %s, undrain it by hand: %v\n", name, err)
				continue
			}
			fmt.Fprintf(stderr, "drill: restored %s\n", name)
		}
		if len(drained) > 0 {
			record("restored")
		}
		if a.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(map[string]any{"drained": a.scenario.Drain, "samples": samples})
		}
	}()
	for _, name := range a.scenario.Drain {
		if slices.Contains(already, name) {
			fmt.Fprintf(stderr, "drill: %s is drained already; left as it is\n", name)
			continue
		}
		if err := adminCall(ctx, http.MethodPost, drainURL(base, name), token, nil, nil); err != nil {
			fmt.Fprintf(stderr, "meridian: drill: draining %s: %v\n", name, err)
			return 1
		}
		drained = append(drained, name)
		fmt.Fprintf(stderr, "drill: drained %s for %s\n", name, a.duration)
	}
	return drillWait(ctx, a, record)
}

// drillWait records the answers every interval until the duration is up
// or ctx ends (130, as a shell reports SIGINT).
func drillWait(ctx context.Context, a simulateArgs, record func(string)) int {
	done := time.NewTimer(a.duration)
	defer done.Stop()
	tick := time.NewTicker(a.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 130
		case <-done.C:
			record("drained")
			return 0
		case <-tick.C:
			record("drained")
		}
	}
}

// drainURL is the admin path draining a region, or a target (REGION/ADDR).
func drainURL(base, name string) string {
	if region, addr, ok := strings.Cut(name, "/"); ok {
		return base + "/api/v1/targets/" + url.PathEscape(region) + "/" + url.PathEscape(addr) + "/drain"
	}
	return base + "/api/v1/regions/" + url.PathEscape(name) + "/drain"
}

// drainedNow is what an operator has drained already: a drill leaves it.
func drainedNow(base, token string) ([]string, error) {
	var regions []admin.Region
	var targets []admin.Target
	if err := adminCall(context.Background(), http.MethodGet, base+"/api/v1/regions", token, nil, &regions); err != nil {
		return nil, err
	}
	if err := adminCall(context.Background(), http.MethodGet, base+"/api/v1/targets", token, nil, &targets); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range regions {
		if r.Drained {
			out = append(out, r.Name)
		}
	}
	for _, t := range targets {
		if t.Drained {
			out = append(out, t.ID)
		}
	}
	return out, nil
}

// sampleShares asks the node how it answers now: a simulation of no
// change, whose shares are the state in force.
func sampleShares(base, token string) (drillSample, error) {
	var rep whatif.Report
	if err := adminCall(context.Background(), http.MethodPost, base+"/api/v1/simulate", token, admin.SimulateRequest{}, &rep); err != nil {
		return drillSample{}, err
	}
	s := drillSample{Shares: map[string][]whatif.Share{}}
	for _, r := range rep.Records {
		s.Shares[strings.TrimSuffix(r.Name, ".")+" "+r.Type] = r.Shares
	}
	return s, nil
}

func printSample(w io.Writer, s drillSample) {
	names := make([]string, 0, len(s.Shares))
	for name := range s.Shares {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var parts []string
		for _, sh := range s.Shares[name] {
			if sh.Before > 0 {
				parts = append(parts, fmt.Sprintf("%s %.1f%%", sh.Region, 100*sh.Before))
			}
		}
		fmt.Fprintf(w, "%8s %-9s %s: %s\n", s.At.Round(time.Second), s.Phase, name, strings.Join(parts, ", "))
	}
}

package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/miekg/dns"
)

// explainLive asks a running DNS node's admin API (explain -admin): its
// health, drains, weights and the forwarders' load are live, where the
// offline explain runs each check once and knows no load.
func explainLive(q explainQuery, token string, stdout, stderr io.Writer) int {
	v := url.Values{"name": {q.name}, "type": {dns.TypeToString[q.qtype]}, "client": {q.subnet.String()}}
	if !q.ecs {
		v.Set("client", q.subnet.Addr().String())
	}
	var ex gslb.Explanation
	if err := getJSON(strings.TrimSuffix(q.admin, "/")+"/api/v1/explain?"+v.Encode(), token, &ex); err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	if q.json {
		return printExplanationJSON(stdout, stderr, q.subnet, q.ecs, gslb.Client{}, ex, nil, nil)
	}
	c := gslb.Client{}
	for _, cand := range ex.Candidates {
		c.HasCoords = c.HasCoords || cand.DistanceKm > 0
	}
	rec := &gslb.Record{Name: ex.Record, Type: ex.Type, TTL: ex.TTL}
	printExplanation(stdout, q.subnet, q.ecs, c, rec, ex, map[string]probes.Status{})
	return 0
}

// printLoad writes the pools' load and shares of a record with load =
// "headroom", and how load moved the answer.
func printLoad(w io.Writer, ex gslb.Explanation) {
	shown := false
	for _, cand := range ex.Candidates {
		shown = shown || cand.Load != nil
	}
	if !shown {
		return
	}
	fmt.Fprintf(w, "load      (load = \"headroom\"): the share of client subnets each pool keeps\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  pool\tload\ttarget\tmax\tshare\twhy")
	for _, cand := range ex.Candidates {
		l := cand.Load
		if l == nil {
			continue
		}
		if l.Reports == 0 {
			fmt.Fprintf(tw, "  %s\t-\t-\t-\t%.0f%%\t%s\n", cand.Pool, l.Share*100, l.Reason)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%.4g %s (smoothed %.4g)\t%.4g\t%.4g\t%.0f%%\t%s\n", cand.Pool, l.Load, l.Unit, l.Smoothed, l.Target, l.Max, l.Share*100, l.Reason)
	}
	tw.Flush()
	if ex.Load != "" {
		fmt.Fprintf(w, "          %s\n", ex.Load)
	}
}

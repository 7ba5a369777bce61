package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/gslb/node"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// explain prints how a dynamic record is decided for a client: where the
// client is, the pools in the order tried with their health, and the
// answer. Health comes from running each check once, now.
func explain(args []string, stdout, stderr io.Writer) int {
	q, code := parseExplainArgs(args, stderr)
	if code != 0 {
		return code
	}
	if q.admin != "" {
		token, err := readToken(q.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "meridian: %v\n", err)
			return 2
		}
		return explainLive(q, token, stdout, stderr)
	}
	cfg, set, err := loadConfig(q.path)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	health := gslb.NewHealthMap()
	parts, err := node.Build(cfg, set, health, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	rec := dynamicRecord(parts.Engine(), q.name, q.qtype)
	if rec == nil {
		fmt.Fprintf(stderr, "meridian: %s %s is not a dynamic record of %s (static data is answered as written; dig shows it)\n",
			q.name, dns.TypeToString[q.qtype], cfg.Path)
		return 1
	}
	statuses := map[string]probes.Status{}
	if !q.noChecks {
		statuses = checkOnce(parts.Checks(), health)
		parts.Engine().Refresh()
	}
	st := node.DNSState(cfg, set, parts, nil, version())
	subnet := q.subnet
	if q.ecs {
		subnet = st.CapECS(subnet)
	}
	client := st.ClientFor(subnet)
	ex := parts.Engine().Explain(rec, &client)
	var sig *signing
	if z := set.Find(zones.Lower(rec.Name)); z != nil {
		sig = explainSigning(cfg.Signers()[z.Origin()], rec, ex)
	}
	if q.json {
		return printExplanationJSON(stdout, stderr, subnet, q.ecs, client, ex, statuses, sig)
	}
	printExplanation(stdout, subnet, q.ecs, client, rec, ex, statuses)
	printSigning(stdout, sig)
	return 0
}

// explainQuery is what explain's command line asks.
type explainQuery struct {
	path, name     string
	qtype          uint16
	subnet         netip.Prefix
	ecs            bool
	json, noChecks bool
	admin          string // a running node's admin API: live health and load
	tokenFile      string
}

// parseExplainArgs reads explain's flags and arguments; a non-zero code
// is the exit status of a bad command line, already explained on stderr.
func parseExplainArgs(args []string, stderr io.Writer) (explainQuery, int) {
	var q explainQuery
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&q.path, "config", "", "configuration file (default: the embedded quickstart)")
	clientArg := fs.String("client", "", "the client: IP (a resolver's address) or IP/PREFIX (an EDNS Client Subnet)")
	fs.BoolVar(&q.json, "json", false, "print the decision as JSON")
	fs.BoolVar(&q.noChecks, "no-checks", false, "do not run the health checks; every target counts as unknown")
	fs.StringVar(&q.admin, "admin", "", "ask a running DNS node's admin API (http://127.0.0.1:8053): its live health, drains and load")
	fs.StringVar(&q.tokenFile, "token-file", "", "with -admin: bearer token, when the node's reads are closed")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meridian explain [-config FILE | -admin URL] -client IP[/PREFIX] [-json] [-no-checks] NAME [TYPE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return q, 2
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *clientArg == "" {
		fs.Usage()
		return q, 2
	}
	q.name, q.qtype = strings.ToLower(dns.Fqdn(fs.Arg(0))), dns.TypeA
	if fs.NArg() == 2 {
		t, ok := dns.StringToType[strings.ToUpper(fs.Arg(1))]
		if !ok {
			fmt.Fprintf(stderr, "meridian: %q is not a record type\n", fs.Arg(1))
			return q, 2
		}
		q.qtype = t
	}
	var err error
	if q.subnet, q.ecs, err = parseClient(*clientArg); err != nil {
		fmt.Fprintf(stderr, "meridian: -client: %v\n", err)
		return q, 2
	}
	return q, 0
}

// dynamicRecord returns e's record of name and type, or nil.
func dynamicRecord(e *gslb.Engine, name string, qtype uint16) *gslb.Record {
	if e == nil {
		return nil
	}
	for _, r := range e.Records(name) {
		if r.Type == qtype {
			return r
		}
	}
	return nil
}

// printExplanationJSON writes the decision as JSON (explain -json).
func printExplanationJSON(stdout, stderr io.Writer, subnet netip.Prefix, ecs bool, client gslb.Client, ex gslb.Explanation, statuses map[string]probes.Status, sig *signing) int {
	out := struct {
		Client  string            `json:"client"`
		ECS     bool              `json:"ecs"`
		Geo     gslb.Client       `json:"geo"`
		Checks  map[string]string `json:"checks"`
		Explain gslb.Explanation  `json:"decision"`
		DNSSEC  *signing          `json:"dnssec,omitempty"`
	}{subnet.String(), ecs, client, map[string]string{}, ex, sig}
	for id, s := range statuses {
		out.Checks[id] = s.State.String() + ": " + s.Result.Reason
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(stderr, "meridian:", err)
		return 1
	}
	return 0
}

func parseClient(s string) (netip.Prefix, bool, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, false, err
		}
		return p.Masked(), true, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), false, nil
}

// checkOnce runs every check once, concurrently, and records the results.
func checkOnce(specs []config.CheckSpec, health *gslb.HealthMap) map[string]probes.Status {
	out := map[string]probes.Status{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, spec := range specs {
		ck, err := probes.NewChecker(spec)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), spec.Timeout)
			defer cancel()
			res := ck.Check(ctx)
			st := probes.Status{State: probes.Down, Result: res, Checked: time.Now()}
			if res.OK {
				st.State = probes.Up
			}
			health.Set(string(spec.Target), st.State)
			mu.Lock()
			out[string(spec.Target)] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func printExplanation(w io.Writer, subnet netip.Prefix, ecs bool, c gslb.Client, rec *gslb.Record, ex gslb.Explanation, statuses map[string]probes.Status) {
	how := "the address the query came from"
	if ecs {
		how = "an EDNS Client Subnet, after the server's ECS limits"
	}
	fmt.Fprintf(w, "client    %s (%s)\n", subnet, how)
	printGeo(w, c, ex)
	fmt.Fprintf(w, "record    %s %s, policy %s, select %s, ttl %d\n", rec.Name, dns.TypeToString[rec.Type], ex.Policy, ex.TargetPolicy, rec.TTL)
	fmt.Fprintf(w, "pools     in the order the policy tried them:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tpool\tregion\tdistance\tweight\thealthy\tmin\teligible\ttargets")
	for i, cand := range ex.Candidates {
		dist := "-"
		if c.HasCoords {
			dist = fmt.Sprintf("%.0f km", cand.DistanceKm)
		}
		eligible := "yes"
		switch {
		case cand.Drained:
			eligible = "no: drained"
		case !cand.Eligible:
			eligible = "no: too few healthy"
		}
		targets := poolTargets(rec, cand.Pool, statuses)
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%d/%d\t%d\t%s\t%s\n", i+1, cand.Pool, cand.Region, dist, cand.Weight,
			cand.Healthy, cand.Total, cand.MinHealthy, eligible, strings.Join(targets, ", "))
	}
	tw.Flush()
	printLoad(w, ex)
	answer := strings.Join(ex.Answer, " ")
	if answer == "" {
		answer = "(none)"
	}
	fmt.Fprintf(w, "answer    %s\n", answer)
	fmt.Fprintf(w, "          %s from %s, ttl %d, ECS scope /%d\n", ex.Outcome, cmp.Or(ex.Pool, "no pool"), ex.TTL, ex.Scope)
	if ex.Scope > 0 {
		fmt.Fprintf(w, "          every client in %s gets this order of pools, so a resolver may give them this answer\n", ex.ScopeNetwork)
	} else {
		fmt.Fprintf(w, "          the order of pools does not depend on the client: a resolver may give this answer to anyone\n")
	}
}

// printGeo writes where the client was placed and which sources said so.
func printGeo(w io.Writer, c gslb.Client, ex gslb.Explanation) {
	switch {
	case !c.Located:
		fmt.Fprintf(w, "geo       not found in the CIDR table or the GeoIP databases\n")
	default:
		var parts []string
		if c.Region != "" {
			parts = append(parts, "region "+c.Region)
		}
		for _, kv := range [][2]string{{"country", c.Country}, {"subdivision", c.Subdivision}, {"continent", c.Continent}} {
			if kv[1] != "" {
				parts = append(parts, kv[0]+" "+kv[1])
			}
		}
		if c.HasCoords {
			parts = append(parts, fmt.Sprintf("at %.2f,%.2f", c.Lat, c.Lon))
		}
		fmt.Fprintf(w, "geo       %s\n", strings.Join(parts, ", "))
	}
	for i, m := range ex.Geo {
		role := "decided"
		if i > 0 {
			role = "below it"
		}
		fmt.Fprintf(w, "          %-8s %s %s\n", role, m.Source, m.Network)
	}
}

// poolTargets lists a pool's targets, each with its state and, when its
// last check failed, why.
func poolTargets(rec *gslb.Record, pool string, statuses map[string]probes.Status) []string {
	var targets []string
	for _, p := range rec.Pools {
		if p.Name != pool {
			continue
		}
		for _, t := range p.Targets {
			state := "unknown"
			if s, ok := statuses[t.ID]; ok {
				state = s.State.String()
				if !s.Result.OK {
					state += " (" + s.Result.Reason + ")"
				}
			}
			targets = append(targets, t.Addr.String()+" "+state)
		}
	}
	return targets
}

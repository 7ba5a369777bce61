package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/admin"
	"github.com/meridian-gslb/meridian/gslb/node"
	"github.com/meridian-gslb/meridian/gslb/whatif"
)

// listFlag is a flag given several times, or once with a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// simulateArgs is what simulate's command line asks.
type simulateArgs struct {
	config, server, tokenFile string
	clients, queries          string
	json, drill               bool
	duration, interval        time.Duration
	scenario                  whatif.Scenario
}

func parseSimulateArgs(args []string, stderr io.Writer) (simulateArgs, int) {
	var a simulateArgs
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a.config, "config", "", "configuration file, every target taken as up (default: the embedded quickstart); ignored with -server")
	fs.StringVar(&a.server, "server", "", "a running node's admin API URL: simulate against its health, drains and weights")
	fs.StringVar(&a.tokenFile, "token-file", "", "bearer token: needed by -drill, and by -server when reads are closed")
	fs.StringVar(&a.clients, "clients", "", "file of clients, one a line: IP or PREFIX, optionally a query count (default: the CIDR rows and the databases' countries)")
	fs.StringVar(&a.queries, "queries", "", "file of query counts, \"LABEL COUNT\" a line (a row's prefix, a country code), to weight the shares")
	fs.BoolVar(&a.json, "json", false, "print the report as JSON")
	fs.BoolVar(&a.drill, "drill", false, "run the drains for real on -server for -duration, record the answers, then restore them")
	fs.DurationVar(&a.duration, "duration", time.Minute, "how long a drill keeps the drains")
	fs.DurationVar(&a.interval, "interval", 5*time.Second, "how often a drill records the answers")
	for _, f := range []struct {
		name  string
		into  *[]string
		usage string
	}{
		{"down", &a.scenario.Down, "a region or target (REGION/ADDR) whose health goes down; repeat or comma-separate"},
		{"up", &a.scenario.Up, "a region or target whose health comes up"},
		{"drain", &a.scenario.Drain, "a region or target drained"},
		{"undrain", &a.scenario.Undrain, "a region or target whose drain is lifted"},
		{"weight", &a.scenario.Weight, "POOL=N (POOL, NAME/POOL or NAME/TYPE/POOL; a target REGION/ADDR=N); N \"configured\" rolls back"},
		{"load", &a.scenario.Load, "REGION=PCT: the region reports PCT percent of its max_load (0 to 1000; 100 is full), for records with load = \"headroom\"; shows the shares the load controller settles at"},
	} {
		fs.Var((*listFlag)(f.into), f.name, f.usage)
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: meridian simulate [-config FILE | -server URL] [-down R] [-up R] [-drain R] [-undrain R] [-weight POOL=N] [-load REGION=PCT] [-clients FILE] [-queries FILE] [-json]")
		fmt.Fprintln(stderr, "       meridian simulate -drill -server URL -token-file FILE -drain REGION [-duration 60s]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return a, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meridian: simulate takes no arguments, got %q\n", fs.Args())
		return a, 2
	}
	if a.drill && (a.server == "" || len(a.scenario.Drain) == 0 || a.duration <= 0 || a.interval <= 0) {
		fmt.Fprintln(stderr, "meridian: -drill needs -server, at least one -drain, and a positive -duration and -interval")
		return a, 2
	}
	return a, 0
}

// simulate prints what a scenario would change: against a running node
// (-server), or against the configuration with every target up.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, code := parseSimulateArgs(args, stderr)
	if code != 0 {
		return code
	}
	token, err := readToken(a.tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 2
	}
	if a.drill {
		return drill(ctx, a, token, stdout, stderr)
	}
	var rep *whatif.Report
	if a.server != "" {
		rep, err = simulateRemote(a, token)
	} else {
		rep, err = simulateLocal(a)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	return printReport(stdout, stderr, rep, a.json)
}

func printReport(stdout, stderr io.Writer, rep *whatif.Report, asJSON bool) int {
	var err error
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 1
	}
	return 0
}

// simulateLocal builds the configuration's engine with every target up
// and no drains, and simulates on it.
func simulateLocal(a simulateArgs) (*whatif.Report, error) {
	cfg, set, err := loadConfig(a.config)
	if err != nil {
		return nil, err
	}
	health := gslb.NewHealthMap()
	parts, err := node.Build(cfg, set, health, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, err
	}
	e := parts.Engine()
	if e == nil {
		return nil, errors.New("the configuration has no [[record]] to simulate")
	}
	for _, r := range e.AllRecords() {
		for _, p := range r.Pools {
			for _, t := range p.Targets {
				health.Set(t.ID, gslb.Up)
			}
		}
	}
	e.Refresh()
	var clients whatif.Clients
	if a.clients != "" {
		f, err := os.Open(a.clients)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		clients, err = whatif.ReadClients(f, a.clients, e.GeoIndex())
		if err != nil {
			return nil, err
		}
	} else if clients, err = whatif.DefaultClients(e.GeoIndex()); err != nil {
		return nil, err
	}
	if a.queries != "" {
		counts, err := readCounts(a.queries)
		if err != nil {
			return nil, err
		}
		clients = whatif.Weighted(clients, counts)
	}
	rep, err := whatif.Simulate(e, a.scenario, clients, cfg.Guards)
	if err != nil {
		return nil, err
	}
	rep.Source += "; every target taken as up (no -server)"
	return rep, nil
}

func readCounts(path string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return whatif.ReadCounts(f, path)
}

// simulateRemote asks a running node to simulate on its own state.
func simulateRemote(a simulateArgs, token string) (*whatif.Report, error) {
	req := admin.SimulateRequest{Scenario: a.scenario}
	if a.clients != "" {
		b, err := os.ReadFile(a.clients)
		if err != nil {
			return nil, err
		}
		req.Clients = strings.Split(string(b), "\n")
	}
	if a.queries != "" {
		counts, err := readCounts(a.queries)
		if err != nil {
			return nil, err
		}
		req.Queries = counts
	}
	var rep whatif.Report
	if err := adminCall(context.Background(), http.MethodPost, strings.TrimSuffix(a.server, "/")+"/api/v1/simulate", token, req, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// adminCall sends body as JSON and decodes a 200's answer into into; any
// other status is an error carrying the server's message.
func adminCall(ctx context.Context, method, url, token string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(b, into)
}

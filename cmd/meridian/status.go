package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian-gslb/meridian/gslb/admin"
)

// status prints the regions and targets a running server reports through
// its admin API.
func status(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("admin", "http://127.0.0.1:8053", "the admin API's URL")
	tokenFile := fs.String("token-file", "", "bearer token, when the server's reads are closed")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "meridian: %v\n", err)
		return 2
	}
	var regions []admin.Region
	var targets []admin.Target
	var cluster clusterView
	for path, into := range map[string]any{"/api/v1/regions": &regions, "/api/v1/targets": &targets, "/api/v1/cluster": &cluster} {
		if err := getJSON(strings.TrimSuffix(*base, "/")+path, token, into); err != nil {
			fmt.Fprintf(stderr, "meridian: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"regions": regions, "targets": targets, "cluster": cluster}); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tUP\tDOWN\tUNKNOWN\tDRAINED")
	for _, r := range regions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", r.Name, r.Up, r.Down, r.Unknown, yesNo(r.Drained))
	}
	tw.Flush()
	printRegionLoads(stdout, regions)
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSTATE\tVOTES UP/DOWN\tSINCE\tRTT\tDRAINED\tREASON")
	for _, t := range targets {
		since, rtt, state := "-", "-", t.State
		if !t.Since.IsZero() {
			since = time.Since(t.Since).Round(time.Second).String() + " ago"
		}
		if t.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.1fms", t.RTTMillis)
		}
		if t.Stale {
			state += " (stale)"
		}
		votes := fmt.Sprintf("%d/%d", t.VotesUp, t.VotesDown)
		if t.VotesNeeded > 0 {
			votes += fmt.Sprintf(" (%d down to fail)", t.VotesNeeded)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, state, votes, since, rtt, yesNo(t.Drained), t.Reason)
	}
	tw.Flush()
	if cluster.Enabled {
		fmt.Fprintf(stdout, "\ncluster: node %s, joined %s, quorum %s, stale after %s\n", cluster.Name, yesNo(cluster.Joined), cluster.Quorum, cluster.StaleAfter)
		tw = tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VANTAGE\tSTATUS\tRESULTS\tFRESH\tLAST HEARD")
		for _, v := range cluster.Vantages {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1fs ago\n", v.Name, v.Status, v.Targets, v.Fresh, v.Age)
		}
		tw.Flush()
		for _, m := range cluster.Members {
			if m.State != "alive" {
				fmt.Fprintf(stdout, "member %s (%s) %s %s ago\n", m.Name, m.Role, m.State, time.Since(m.Since).Round(time.Second))
			}
		}
	}
	return 0
}

// clusterView is the part of /api/v1/cluster status prints.
type clusterView struct {
	Enabled    bool   `json:"enabled"`
	Name       string `json:"name,omitempty"`
	Joined     bool   `json:"joined"`
	Quorum     string `json:"quorum,omitempty"`
	StaleAfter string `json:"stale_after,omitempty"`
	Members    []struct {
		Name  string    `json:"name"`
		Role  string    `json:"role"`
		State string    `json:"state"`
		Since time.Time `json:"since"`
	} `json:"members"`
	Vantages []struct {
		Name    string  `json:"name"`
		Status  string  `json:"status"`
		Targets int     `json:"targets"`
		Fresh   int     `json:"fresh"`
		Age     float64 `json:"age_s"`
		Suspect bool    `json:"suspect"`
	} `json:"vantages"`
}

// readToken reads a bearer token file; "" without one.
func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func getJSON(url, token string, into any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

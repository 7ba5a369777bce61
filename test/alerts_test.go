package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v2"
)

// TestAlertsAndDashboard holds examples/prometheus and examples/grafana to
// the metrics a running server exports: every meridian_ metric an alert or
// panel names must exist.
func TestAlertsAndDashboard(t *testing.T) {
	// A node in a cluster of its own with one vantage exports every
	// metric: the DNS side's, and the cluster's under the same health
	// names as a single node's checks.
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	writeFile(t, keyFile, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))+"\n")
	var targets []*target
	for range quickstartTargets {
		targets = append(targets, newTarget(t))
	}
	node := startDNSNode(t, "dns1", keyFile, nil, targets)
	startAgent(t, "v1", vantageAddrs[0], keyFile, []string{node.gossip})
	waitVotes(t, "the vantage reports", []*dnsNode{node}, "us-east/192.0.2.100", 1, 0)
	s := node.instance
	base := node.api(t)
	// Metrics with labels appear once something happened: a reload, a
	// refused change and a transition make the last ones show.
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reloaded", 0)
	adminCall(t, "POST", base+"/api/v1/regions/eu-west/drain", "")
	targets[2].stop() // eu-west's
	s.waitLog(t, "target down", 0)
	_, page := adminCall(t, "GET", base+"/metrics", "")
	exported := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			exported[f[0]] = true
			if len(f) > 1 && f[1] == "histogram" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					exported[f[0]+suffix] = true
				}
			}
		}
	}
	metricName := regexp.MustCompile(`meridian_[a-z_]+`)
	check := func(source, expr string) {
		t.Helper()
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 && !strings.Contains(expr, "up{") {
			t.Errorf("%s: %q names no Meridian metric", source, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not exported (expr %q)", source, n, expr)
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join("..", "examples", "prometheus", "meridian-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For    string
				Labels, Annotations map[string]string
			}
		}
	}
	if err := yaml.UnmarshalStrict(raw, &rules); err != nil {
		t.Fatalf("alert rules do not parse as Prometheus rule groups: %v", err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		if g.Name == "meridian-dnssec" {
			continue // a signed zone's: TestDNSSECAPIAndMetrics checks them on a signed node
		}
		for _, r := range g.Rules {
			alerts++
			check("alert "+r.Alert, r.Expr)
		}
	}
	if alerts < 6 {
		t.Errorf("only %d alert rules", alerts)
	}

	raw, err = os.ReadFile(filepath.Join("..", "examples", "grafana", "meridian-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard does not parse: %v", err)
	}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			check("panel "+p.Title, q.Expr)
		}
	}
	if len(dash.Panels) < 6 {
		t.Errorf("only %d panels", len(dash.Panels))
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const adminToken = "e2e-token-0123456789abcdef"

// adminCall sends one request to the admin API and returns the status.
func adminCall(t *testing.T, method, url, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAdminDrain drains eu-west through the real binary's admin API, sees
// eu-west's clients move, restarts the server and finds the drain still
// there, then restores it.
func TestAdminDrain(t *testing.T) {
	s := startQuickstartWith(t, func(config string) string {
		return replaceOnce(t, config, `listen = "127.0.0.1:0"`,
			"listen = \"127.0.0.1:0\"\ntoken_file = \"token\"\nstate_file = \"admin-state.json\"")
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken+"\n")
	})
	api := func() string { return "http://" + s.waitLog(t, "admin API", 0).str("addr") }
	euClient := func() []string {
		return s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24").sections["ANSWER"]
	}
	onlyEU := func(rrs []string) bool { return len(rrs) == 1 && strings.HasSuffix(rrs[0], " 198.51.100.100") }

	base := api()
	if !onlyEU(euClient()) {
		t.Fatalf("before any drain, eu-west's client got %v", euClient())
	}
	for _, bearer := range []string{"", "not-the-token-at-all"} {
		if code, body := adminCall(t, "POST", base+"/api/v1/regions/eu-west/drain", bearer); code != 401 {
			t.Fatalf("bearer %q: %d %s, want 401", bearer, code, body)
		}
	}
	if !onlyEU(euClient()) {
		t.Fatal("a refused drain changed the answers")
	}
	if code, body := adminCall(t, "POST", base+"/api/v1/regions/eu-west/drain", adminToken); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	if got := euClient(); onlyEU(got) || len(got) != 2 {
		t.Fatalf("eu-west drained, its client got %v, want us-east's two VIPs", got)
	}
	if s.waitLog(t, "audit: change", 0).str("region") != "eu-west" {
		t.Error("the change is not in the audit log")
	}

	// Restart: the drain comes back from the state file.
	s.signal(t, syscall.SIGTERM)
	if code := s.waitExit(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if err := s.start(t); err != nil {
		t.Fatalf("restart: %v", err)
	}
	base = api()
	if got := euClient(); onlyEU(got) {
		t.Fatalf("after a restart the drain is gone: %v", got)
	}
	_, body := adminCall(t, "GET", base+"/api/v1/regions", "")
	var regions []struct {
		Name    string
		Drained bool
	}
	if err := json.Unmarshal([]byte(body), &regions); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, r := range regions {
		if r.Drained != (r.Name == "eu-west") {
			t.Errorf("region %s drained=%v after restart", r.Name, r.Drained)
		}
	}
	if code, body := adminCall(t, "DELETE", base+"/api/v1/regions/eu-west/drain", adminToken); code != 200 {
		t.Fatalf("restore: %d %s", code, body)
	}
	if got := euClient(); !onlyEU(got) {
		t.Fatalf("restored, eu-west's client got %v", got)
	}
}

// metric returns the value of one sample in a /metrics page, or -1.
func metric(page, sample string) float64 {
	for _, line := range strings.Split(page, "\n") {
		if name, value, ok := strings.Cut(line, " "); ok && name == sample {
			var v float64
			if _, err := fmt.Sscan(value, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// TestMetricsMove scrapes /metrics around queries, a truncation, a
// health transition and a reload, and checks each moved.
func TestMetricsMove(t *testing.T) {
	s := startQuickstart(t)
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	scrape := func() string {
		code, body := adminCall(t, "GET", base+"/metrics", "")
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	// Every target of the quickstart copy is down (nothing listens on its
	// check port): four transitions from unknown.
	deadline := time.Now().Add(10 * time.Second)
	for metric(scrape(), `meridian_targets{region="us-east",state="down"}`) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("targets never reported down:\n%s", scrape())
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := scrape()
	s.dig(t, "www.example.test", "A", "+norec")
	s.dig(t, "nope.example.test", "A", "+norec", "+tcp")
	s.dig(t, "big.example.test", "TXT", "+norec", "+ignore")
	s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24")
	writeFile(t, s.config, readFile(t, s.config)) // same config: a successful reload
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reloaded", 0)
	after := scrape()
	for _, tt := range []struct {
		sample string
		delta  float64
	}{
		{`meridian_dns_responses_total{rcode="NOERROR",transport="udp"}`, 3},
		{`meridian_dns_responses_total{rcode="NXDOMAIN",transport="tcp"}`, 1},
		{`meridian_dns_truncated_total`, 1},
		{`meridian_dns_ecs_queries_total`, 1},
		{`meridian_dns_queries_total{rcode="NOERROR",type="A",zone="example.test."}`, 2},
		{`meridian_dns_queries_total{rcode="NOERROR",type="TXT",zone="example.test."}`, 1},
		{`meridian_dns_queries_total{rcode="NXDOMAIN",type="A",zone="example.test."}`, 1},
		{`meridian_dns_dynamic_answers_total{region="eu-west"}`, 1},
		{`meridian_reloads_total{result="success"}`, 1},
	} {
		b, a := max(metric(before, tt.sample), 0), metric(after, tt.sample)
		if a-b != tt.delta {
			t.Errorf("%s went from %v to %v, want +%v", tt.sample, b, a, tt.delta)
		}
	}
	if metric(after, `meridian_health_transitions_total{state="down",target="eu-west/198.51.100.100"}`) != 1 {
		t.Errorf("no down transition for eu-west's target:\n%s", after)
	}
}

// TestStatus reads a running server through `meridian status`.
func TestStatus(t *testing.T) {
	s := startQuickstart(t)
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	// Wait for the first checks, so the states are settled (the canary
	// record's targets are not checked: they stay unknown).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := adminCall(t, "GET", base+"/api/v1/targets", "")
		if strings.Count(body, `"unknown"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets still unknown: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, errOut, code := runMeridian(t, "status", "-admin", base)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"REGION", "us-east", "TARGET", "eu-west/198.51.100.100", "down", "connection refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runMeridian(t, "status", "-admin", base, "-json")
	var got struct {
		Regions []struct{ Name string }
		Targets []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || len(got.Regions) != 3 || len(got.Targets) != quickstartTargets+2 {
		t.Fatalf("status -json: exit %d, %v, %+v", code, err, got)
	}
	if _, _, code := runMeridian(t, "status", "-admin", "http://127.0.0.1:1"); code != 1 {
		t.Errorf("unreachable admin API: exit %d, want 1", code)
	}
}

// TestAdminReloadAndQueryLog: reload through the API (good, then a broken
// file that keeps the old configuration), and the sampled query log.
func TestAdminReloadAndQueryLog(t *testing.T) {
	s := startQuickstartWith(t, func(config string) string {
		config = replaceOnce(t, config, `listen = "127.0.0.1:0"`, "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"")
		return replaceOnce(t, config, `format = "json"`, "format = \"json\"\nquery_sample = 1.0")
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken)
	})
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")

	s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24")
	q := s.waitLog(t, "query", 0)
	if q.str("region") != "eu-west" || q.str("ecs") != "198.51.100.0/24" || q.str("outcome") == "" {
		t.Errorf("query log entry %v", q)
	}

	if code, body := adminCall(t, "POST", base+"/api/v1/reload", adminToken); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	s.waitLog(t, "reloaded", 0)
	good := readFile(t, s.config)
	writeFile(t, s.config, good+"\n[bogus]\nkey = 1\n")
	code, body := adminCall(t, "POST", base+"/api/v1/reload", adminToken)
	if code != 422 || !strings.Contains(body, "bogus") {
		t.Fatalf("broken reload: %d %s, want 422 naming the bad table", code, body)
	}
	if got := s.dig(t, "www.example.test", "A", "+norec").sections["ANSWER"]; len(got) != 2 {
		t.Fatalf("after a failed reload: %v", got)
	}
	// A zone file that includes /etc/passwd: refused, and the answer,
	// which leaves the host, names the file and line but quotes nothing
	// of /etc/passwd (issue 15, item 6).
	writeFile(t, s.config, good)
	zone := filepath.Join(filepath.Dir(s.config), "example.test.zone")
	writeFile(t, zone, readFile(t, zone)+"$INCLUDE /etc/passwd\n")
	code, body = adminCall(t, "POST", base+"/api/v1/reload", adminToken)
	if code != 422 || !strings.Contains(body, "example.test.zone:") || !strings.Contains(body, "may only read files in the zone file's folder") {
		t.Fatalf("reload with $INCLUDE /etc/passwd: %d %s, want 422 naming the file and the rule", code, body)
	}
	if strings.Contains(body, "root:") {
		t.Errorf("the reload error quotes /etc/passwd: %s", body)
	}
	if got := s.dig(t, "www.example.test", "A", "+norec").sections["ANSWER"]; len(got) != 2 {
		t.Fatalf("after a refused include: %v", got)
	}
}

// TestCanarySteering follows the canary steps of docs/operations.md
// ("Steering with curl"): shift the canary pool's weight through the API,
// count the answers, roll back.
func TestCanarySteering(t *testing.T) {
	s := startQuickstartWith(t, func(config string) string {
		return replaceOnce(t, config, `listen = "127.0.0.1:0"`, "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"")
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken+"\n")
	})
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	const queries = 400
	canaryShare := func() float64 {
		t.Helper()
		args := []string{"+short", "+norec"}
		for range queries {
			args = append(args, "canary.example.test", "A")
		}
		out, errOut, err := s.runDig(t, args...)
		if err != nil {
			t.Fatalf("dig: %v\n%s", err, errOut)
		}
		counts := map[string]int{}
		for _, line := range strings.Fields(out) {
			counts[line]++
		}
		if counts["192.0.2.110"]+counts["192.0.2.111"] != queries {
			t.Fatalf("answers %v, want %d of stable and canary", counts, queries)
		}
		return float64(counts["192.0.2.111"]) / queries
	}
	weightURL := base + "/api/v1/records/canary.example.test/A/pools/canary/weight"
	setWeight := func(pct int) {
		t.Helper()
		req, _ := http.NewRequest("PUT", weightURL, strings.NewReader(fmt.Sprintf(`{"weight": %d}`, pct)))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT weight %d: %s", pct, resp.Status)
		}
	}
	poolWeight := func() float64 {
		_, page := adminCall(t, "GET", base+"/metrics", "")
		return metric(page, `meridian_pool_weight{pool="canary",record="canary.example.test.",region="us-east",type="A"}`)
	}

	if got := canaryShare(); got != 0 {
		t.Fatalf("before any shift the canary answers %.2f of queries", got)
	}
	tests := []struct {
		weight   int
		min, max float64 // share of canary answers
	}{
		{5, 0.005, 0.12}, // 5 of 105: 4.8%
		{25, 0.10, 0.32}, // 20%
		{100, 0.40, 0.60},
	}
	for _, tt := range tests {
		setWeight(tt.weight)
		if got := canaryShare(); got < tt.min || got > tt.max {
			t.Errorf("canary weight %d: share %.3f, want %.2f to %.2f", tt.weight, got, tt.min, tt.max)
		}
		if got := poolWeight(); got != float64(tt.weight) {
			t.Errorf("canary weight %d: meridian_pool_weight = %v", tt.weight, got)
		}
	}
	if code, body := adminCall(t, "DELETE", weightURL, adminToken); code != http.StatusOK {
		t.Fatalf("rollback: %d %s", code, body)
	}
	if got := canaryShare(); got != 0 {
		t.Errorf("after the rollback the canary answers %.2f of queries", got)
	}
	if got := poolWeight(); got != 0 {
		t.Errorf("after the rollback meridian_pool_weight = %v, want the configured 0", got)
	}
}

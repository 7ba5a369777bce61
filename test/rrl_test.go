package e2e

import (
	"strings"
	"testing"
)

// TestRateLimiting tries the quickstart's rate limiting as a user would:
// a burst of dig queries from one address gets its second's worth of
// answers (20) and then truncated replies (slip 1 here, so that no query
// waits for a dropped reply; the quickstart's slip 2 drops every other);
// dig's own retry over TCP gets the answer; another /24 is answered in
// full; the limited replies are counted and logged once.
func TestRateLimiting(t *testing.T) {
	s := startQuickstartWith(t, func(config string) string {
		return replaceOnce(t, config, "[server.rrl]\nenabled = false\n", "[server.rrl]\nenabled = true\nslip = 1\n")
	})
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	const n = 80
	args := []string{"+ignore", "+tries=1", "+time=1", "+norec"}
	for range n {
		args = append(args, "www.example.test", "A")
	}
	out, _, _ := s.runDig(t, args...)
	answered := strings.Count(out, "flags: qr aa;")
	truncated := strings.Count(out, "flags: qr aa tc;")
	// The bucket refills at 20 a second while dig runs, so how many of
	// the 80 are answered depends on its speed; never fewer than the
	// burst, never all.
	if answered < 20 || truncated == 0 || answered+truncated != n {
		t.Errorf("%d queries: %d answered, %d truncated\n%s", n, answered, truncated, out)
	}

	// dig without +ignore retries a truncated reply over TCP, which is
	// never limited: with the bucket still empty, every query is
	// answered, some of them over TCP.
	retry := []string{"+norec", "+tries=1", "+time=1"}
	for range n {
		retry = append(retry, "www.example.test", "A")
	}
	out, _, _ = s.runDig(t, retry...)
	if got := strings.Count(out, "status: NOERROR"); got != n || !strings.Contains(out, ";; Truncated, retrying in TCP mode.") {
		t.Errorf("%d queries without +ignore: %d answered; want all, some after a TCP retry\n%s", n, got, out)
	}

	// Another /24 has buckets of its own.
	other, _, err := s.runDig(t, "-b", "127.1.0.1", "+norec", "+ignore", "www.example.test", "A")
	if err != nil || !strings.Contains(other, "flags: qr aa;") {
		t.Errorf("a client of another /24: %v\n%s", err, other)
	}

	_, page := adminCall(t, "GET", base+"/metrics", "")
	slips := metric(page, `meridian_rrl_limited_total{action="slip",class="answer"}`)
	drops := metric(page, `meridian_rrl_limited_total{action="drop",class="answer"}`)
	if slips < float64(truncated) || drops > 0 || metric(page, "meridian_rrl_buckets") != 65536 {
		t.Errorf("meridian_rrl_limited_total slip %v drop %v, buckets %v", slips, drops, metric(page, "meridian_rrl_buckets"))
	}
	if logs := s.logsWithMsg("rate limiting responses"); len(logs) != 1 || logs[0].str("prefix") != "127.0.0.0/24" {
		t.Errorf("rate limiting logged %d times: %v", len(logs), logs)
	}
}

package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// logLines is the lines of a text log whose message starts with prefix.
func logLines(log *testkit.Buffer, prefix string) []string {
	var out []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, `msg="`+prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestWrongKeyMembers runs real memberlist nodes on loopback: a DNS node,
// a probe with another key (127.0.0.2) and one with none (127.0.0.3).
// Each probe says at error why it cannot join and keeps the reason for
// its /readyz; the DNS node logs one line per source and window, naming
// the probe's address, sums up the rest, and counts every error (issue
// 15, item 5).
func TestWrongKeyMembers(t *testing.T) {
	nodeLog := &testkit.Buffer{}
	dns, err := New(context.Background(), Config{Name: "dns", Bind: "127.0.0.1:0", Keys: [][]byte{testKey},
		Meta: Meta{Role: RoleDNS}, Tune: fast, Reconnect: fastReconnect, Log: slog.New(slog.NewTextHandler(nodeLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Shutdown()
	const window = 2 * time.Second
	dns.keyErrs.window = window
	if err := dns.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	probes := []struct {
		bind, reason, join string
		keys               [][]byte
	}{
		{"127.0.0.2:0", "wrong_key", "wrong cluster key", [][]byte{bytes.Repeat([]byte{9}, 32)}},
		{"127.0.0.3:0", "clear_text", "no cluster key: the seeds encrypt", nil},
	}
	const tries = 3 * time.Second // six join attempts each, one every 500 ms
	var wg sync.WaitGroup
	for _, p := range probes {
		probeLog := &testkit.Buffer{}
		n, err := New(context.Background(), Config{Name: "probe-" + p.reason, Bind: p.bind, Seeds: []string{dns.Addr()},
			Keys: p.keys, Meta: Meta{Role: RoleProbe, Vantage: p.reason}, Tune: fast, Log: slog.New(slog.NewTextHandler(probeLog, nil))})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer n.Shutdown()
			ctx, cancel := context.WithTimeout(context.Background(), tries)
			defer cancel()
			if err := n.Join(ctx); err == nil {
				t.Errorf("%s joined", p.reason)
			}
			if n.Joined() || !strings.Contains(n.JoinError(), p.join) {
				t.Errorf("%s: joined %v, join error %q; want it to say %q", p.reason, n.Joined(), n.JoinError(), p.join)
			}
			// Once at error, not once per attempt: the next is due in 30 s.
			if got := logLines(probeLog, "cannot join the cluster"); len(got) != 1 || !strings.Contains(got[0], "level=ERROR") || !strings.Contains(got[0], p.join) {
				t.Errorf("%s logged %q, want one error saying %q", p.reason, got, p.join)
			}
		}()
	}
	wg.Wait()
	// Each source was logged at once, with its own address, then muted
	// within the window; the window's end sums the muted ones up.
	for _, p := range probes {
		host := strings.TrimSuffix(p.bind, ":0")
		first := logLines(nodeLog, "cluster: cannot read a message")
		if n := countWith(first, "from="+host); n < 1 || n > int(tries/window)+1 {
			t.Errorf("%d lines for %s in %s, want 1 to %d:\n%s", n, host, tries, int(tries/window)+1, strings.Join(first, "\n"))
		}
		if countWith(first, "from="+host+" reason="+p.reason) == 0 {
			t.Errorf("no line names %s with reason %s:\n%s", host, p.reason, strings.Join(first, "\n"))
		}
	}
	if strings.Contains(strings.Join(logLines(nodeLog, "memberlist:"), "\n"), "decrypt") {
		t.Errorf("memberlist's own lines got through:\n%s", strings.Join(logLines(nodeLog, "memberlist:"), "\n"))
	}
	counts := dns.keyErrs.counts()
	if counts["wrong_key"] < 3 || counts["clear_text"] < 3 {
		t.Errorf("counted %v, want at least 3 of each in %s of attempts every 500 ms", counts, tries)
	}
	testkit.Eventually(t, "the muted errors summed up", func() bool {
		return len(logLines(nodeLog, "cluster: still cannot read messages")) >= 2
	})
	for _, line := range logLines(nodeLog, "cluster: still cannot read messages") {
		if !strings.Contains(line, "from=127.0.0.") || !strings.Contains(line, "count=") {
			t.Errorf("summary %q does not say whom and how many", line)
		}
	}
}

func countWith(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

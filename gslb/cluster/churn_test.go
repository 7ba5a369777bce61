package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/gslb/quorum"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

// logBuffer is a slog handler's output, read while nodes write it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// events returns "msg member" for each line of the log that names a
// member, in order.
func (b *logBuffer) events() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var e struct{ Msg, Member string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Member != "" {
			out = append(out, e.Msg+" "+e.Member)
		}
	}
	return out
}

// TestMembersLogged: a node logs, naming the member, each that joins,
// leaves, fails and comes back, and lists those lost with how.
func TestMembersLogged(t *testing.T) {
	var logs logBuffer
	a, err := New(t.Context(), Config{
		Name: "a", Bind: "127.0.0.1:0", Keys: [][]byte{testKey}, Meta: Meta{Role: RoleDNS},
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Tune: fast, Reconnect: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	b := start(t, "b", Meta{Role: RoleProbe}, a.Addr())
	// b in before c starts: joined one after the other, they are logged so.
	testkit.Eventually(t, "two members", func() bool { return len(a.Members()) == 2 })
	c := start(t, "c", Meta{Role: RoleProbe}, a.Addr())
	testkit.Eventually(t, "three members", func() bool { return len(a.Members()) == 3 })
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "b to leave", func() bool { return len(a.Members()) == 2 })
	addr := c.Addr()
	c.Shutdown()
	testkit.Eventually(t, "c to fail", func() bool { return len(a.Members()) == 1 })
	if got := fmt.Sprint(a.Lost()); !strings.Contains(got, "b ") || !strings.Contains(got, " left ") || !strings.Contains(got, " failed ") {
		t.Errorf("a's lost members: %s", got)
	}
	time.Sleep(3 * gossipToTheDead)
	startAt(t, "c", addr, Meta{Role: RoleProbe}, a.Addr())
	testkit.Eventually(t, "c to come back", func() bool { return len(a.Members()) == 2 })

	want := []string{"member joined b", "member joined c", "member left b", "member failed c", "member came back c"}
	ok := false
	defer func() {
		if !ok {
			t.Logf("events %q, want %q", logs.events(), want)
		}
	}()
	testkit.Eventually(t, "the log to name every event", func() bool { ok = slices.Equal(logs.events(), want); return ok })
}

// TestGossipFromBindAddress: a node's streams to its peers leave from its
// bind address, as peers and firewalls expect, not from whatever address
// the system picks.
func TestGossipFromBindAddress(t *testing.T) {
	a := start(t, "a", Meta{Role: RoleDNS})
	var mu sync.Mutex
	var from []string
	a.SetBlock(func(addr string) bool {
		mu.Lock()
		from = append(from, addr)
		mu.Unlock()
		return false
	})
	b := startAt(t, "b", "127.0.0.2:0", Meta{Role: RoleDNS}, a.Addr()) // the join is a TCP push/pull to a
	testkit.Eventually(t, "a to see b", func() bool { return len(a.Members()) == 2 })
	mu.Lock()
	defer mu.Unlock()
	for _, addr := range from {
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.2" {
			t.Errorf("a exchanged with %s; b is at %s", addr, b.Addr())
		}
	}
}

// TestJoiningVantageJudgedFirst: with a count quorum of 1, a vantage that
// joins with a broken path, reporting its targets down one by one and
// then as a whole, never takes a target out, not even for the moment
// before the periodic recompute.
func TestJoiningVantageJudgedFirst(t *testing.T) {
	dns, err := New(t.Context(), Config{
		Name: "dns", Bind: "127.0.0.1:0", Keys: [][]byte{testKey}, Meta: Meta{Role: RoleDNS},
		Quorum: quorum.Options{Rule: quorum.Rule{Count: 1}}, Log: testLog(t), Tune: fast,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Shutdown() })
	hm := gslb.NewHealthMap()
	h := NewHealth(dns, hm.Store, testLog(t))
	h.recheck = time.Hour // the per-message path alone
	go h.Run(t.Context())
	targets := []health.TargetID{"eu/192.0.2.1", "us/192.0.2.2"}
	reports := func(st gslb.State, ids ...health.TargetID) []Report {
		var out []Report
		for _, id := range ids {
			out = append(out, Report{Target: id, State: st, Seq: 1, Window: time.Minute})
		}
		return out
	}
	for _, name := range []string{"a", "b"} {
		v := start(t, name, Meta{Role: RoleProbe}, dns.Addr())
		v.SendResults(Results{Vantage: name, Boot: 1, Complete: true, Reports: reports(gslb.Up, targets...)})
	}
	testkit.Eventually(t, "both targets up", func() bool {
		return hm.Snapshot().State(targets[0]) == gslb.Up && hm.Snapshot().State(targets[1]) == gslb.Up
	})

	broken := start(t, "c", Meta{Role: RoleProbe}, dns.Addr())
	testkit.Eventually(t, "c to see dns", func() bool { return len(broken.alive(RoleDNS)) == 1 })
	broken.SendResults(Results{Vantage: "c", Boot: 1, Reports: reports(gslb.Down, targets[0])})
	broken.SendResults(Results{Vantage: "c", Boot: 1, Reports: reports(gslb.Down, targets[1])})
	broken.SendResults(Results{Vantage: "c", Boot: 1, Complete: true, Reports: reports(gslb.Down, targets...)})
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for _, id := range targets {
			if hm.Snapshot().State(id) != gslb.Up {
				t.Fatalf("%s went %s on a joining vantage's votes", id, hm.Snapshot().State(id))
			}
		}
		time.Sleep(time.Millisecond)
	}
	testkit.Eventually(t, "c judged suspect", func() bool {
		vs := dns.Table().Vantages(time.Now())
		return len(vs) == 3 && vs[2].Status == quorum.StatusSuspect
	})
}

// TestLossClassified: a member's loss is a leave when its last metadata
// marked it leaving or it said goodbye lately, whatever order memberlist
// handled them in, and a failure otherwise.
func TestLossClassified(t *testing.T) {
	meta := func(leaving bool) []byte {
		b, err := json.Marshal(wireMeta{Meta: Meta{Role: RoleProbe, Vantage: "b"}, Leaving: leaving})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	for _, c := range []struct {
		name    string
		leaving bool
		bye     time.Duration // how long ago b said goodbye; 0: never
		want    string
	}{
		{"metadata marked leaving", true, 0, "left"},
		{"goodbye just before", false, time.Second, "left"},
		{"goodbye too long ago", false, 2 * byeFor, "failed"},
		{"neither", false, 0, "failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(Config{Name: "a"}, nil)
			if c.bye > 0 {
				n.leaving["b"] = now.Add(-c.bye)
			}
			m := &memberlist.Node{Name: "b", Meta: meta(c.leaving)}
			if got := n.lose(m, memberOf(m), now); got != c.want {
				t.Errorf("lose: %s, want %s", got, c.want)
			}
			if got := n.Lost(); len(got) != 1 || got[0].State != c.want || got[0].Vantage != "b" {
				t.Errorf("Lost: %+v", got)
			}
		})
	}
}

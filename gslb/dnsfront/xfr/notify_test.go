package xfr

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// secondary is a real UDP DNS server that counts the NOTIFY messages it
// gets and acknowledges them, signed, once it has dropped the first
// drop of them.
type secondary struct {
	addr     string
	got      atomic.Int32
	verified atomic.Int32
}

func startSecondary(t *testing.T, drop int32, key Key) *secondary {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &secondary{addr: pc.LocalAddr().String()}
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{key.Name: key.Secret},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Opcode != dns.OpcodeNotify || s.got.Add(1) <= drop {
				return
			}
			m := new(dns.Msg)
			m.SetReply(r)
			if ts := r.IsTsig(); ts != nil && w.TsigStatus() == nil {
				s.verified.Add(1)
				m.SetTsig(ts.Hdr.Name, ts.Algorithm, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(m)
		})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func fastNotifier() *Notifier {
	n := NewNotifier(NewMetrics(), slog.New(slog.DiscardHandler))
	n.timeout, n.backoff, n.maxBackoff = 200*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
	return n
}

func TestNotifyRetriedUntilAcknowledged(t *testing.T) {
	key := Key{Name: "ns2-example.", Algorithm: dns.HmacSHA256, Secret: "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE="}
	sec := startSecondary(t, 2, key) // the first two are lost
	n := fastNotifier()
	defer n.Close()
	soa := zoneOf(t, 5).SOA()
	n.Notify("example.test.", soa, []string{sec.addr}, &key)
	testkit.Eventually(t, "acknowledged", func() bool { return counter(n.metrics, "example.test.", "acked") == 1 })
	if got := sec.got.Load(); got != 3 {
		t.Errorf("the secondary got %d NOTIFY, want 3 (two lost, one acknowledged)", got)
	}
	if sec.verified.Load() != 1 || counter(n.metrics, "example.test.", "failed") != 2 {
		t.Errorf("verified %d, failed %v", sec.verified.Load(), counter(n.metrics, "example.test.", "failed"))
	}
}

// TestNotifyDoesNotWait: a secondary that never answers costs the caller
// nothing, a newer serial replaces the retries, and Close ends them.
func TestNotifyDoesNotWait(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	n := fastNotifier()
	start := time.Now()
	for serial := uint32(1); serial <= 3; serial++ {
		n.Notify("example.test.", zoneOf(t, serial).SOA(), []string{dead.LocalAddr().String()}, nil)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Notify took %v with a dead secondary", took)
	}
	if got := counter(n.metrics, "example.test.", "superseded"); got != 2 {
		t.Errorf("superseded %v, want 2", got)
	}
	testkit.Eventually(t, "retries", func() bool { return counter(n.metrics, "example.test.", "failed") >= 2 })
	start = time.Now()
	n.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if got := counter(n.metrics, "example.test.", "acked"); got != 0 {
		t.Errorf("acked %v from a dead secondary", got)
	}
}

func TestNotifyGivesUp(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	n := fastNotifier()
	n.minGiveUp = 300 * time.Millisecond // the SOA's refresh is 7200 s: give up after minGiveUp, not it
	defer n.Close()
	soa := zoneOf(t, 1).SOA()
	soa.Refresh = 0
	n.Notify("example.test.", soa, []string{dead.LocalAddr().String()}, nil)
	testkit.Eventually(t, "given up", func() bool { return counter(n.metrics, "example.test.", "gave_up") == 1 })
}

func counter(m *Metrics, zone, result string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.notifies)
	families, _ := reg.Gather()
	for _, f := range families {
		for _, s := range f.GetMetric() {
			l := s.GetLabel() // sorted: result, zone
			if l[0].GetValue() == result && l[1].GetValue() == zone {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

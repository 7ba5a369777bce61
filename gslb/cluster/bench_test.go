package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/health"
	"github.com/meridian-gslb/meridian/gslb/quorum"
)

// benchTargets, benchDNS and benchVantages size the benchmark as the
// issue asks: 3 DNS nodes, 5 vantages, 1,000 targets.
const (
	benchTargets  = 1000
	benchDNS      = 3
	benchVantages = 5
	benchRefresh  = 2 * time.Second // the probe agent's default
)

// BenchmarkConvergence measures, over real loopback sockets with
// memberlist's default LAN timers, the time from the report that makes a
// quorum (the third of five vantages seeing a target down) to the moment
// the last of three DNS nodes has the target down in the health view its
// engine reads. Meanwhile every vantage sends all 1,000 results every 2 s,
// as agents do, and the benchmark reports the gossip bytes per second of
// a DNS node and of a vantage, over at least 10 s, and the size of one DNS
// node's push/pull state (exchanged every 30 s with one random member).
func BenchmarkConvergence(b *testing.B) {
	ctx := context.Background()
	var dns []*Node
	var maps []*gslb.HealthMap
	newNode := func(name string, meta Meta, seeds ...string) *Node {
		n, err := New(ctx, Config{Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Keys: [][]byte{testKey}, Meta: meta,
			Quorum: quorum.Options{StaleAfter: 10 * time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Shutdown() })
		if err := n.Join(ctx); err != nil {
			b.Fatal(err)
		}
		return n
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for i := range benchDNS {
		seeds := []string{}
		if i > 0 {
			seeds = append(seeds, dns[0].Addr())
		}
		n := newNode(fmt.Sprintf("dns%d", i), Meta{Role: RoleDNS}, seeds...)
		hm := gslb.NewHealthMap()
		go NewHealth(n, hm.Store, slogDiscard()).Run(runCtx)
		dns, maps = append(dns, n), append(maps, hm)
	}
	var vantages []*Node
	for i := range benchVantages {
		vantages = append(vantages, newNode(fmt.Sprintf("v%d", i), Meta{Role: RoleProbe, Vantage: fmt.Sprintf("v%d", i)}, dns[0].Addr()))
	}
	for _, v := range vantages {
		for len(v.alive(RoleDNS)) < benchDNS {
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Every vantage's view, sent in full every benchRefresh.
	var mu sync.Mutex
	seq := uint64(time.Now().UnixNano()) // as agents start them: 9 bytes on the wire
	views := make([][]Report, benchVantages)
	for v := range views {
		for t := range benchTargets {
			views[v] = append(views[v], Report{Target: benchTarget(t), State: gslb.Up, Seq: seq, RTT: 1500 * time.Microsecond, Reason: "status 200"})
		}
	}
	sendAll := func() {
		for v, n := range vantages {
			mu.Lock()
			rs := Results{Vantage: n.cfg.Meta.Vantage, Complete: true, Reports: append([]Report(nil), views[v]...)}
			mu.Unlock()
			n.SendResults(rs)
		}
	}
	sendAll()
	for _, hm := range maps {
		for hm.Snapshot().State(benchTarget(benchTargets-1)) != gslb.Up {
			time.Sleep(10 * time.Millisecond)
		}
	}
	go func() {
		t := time.NewTicker(benchRefresh)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				sendAll()
			}
		}
	}()
	set := func(v, t int, st gslb.State) Report {
		mu.Lock()
		defer mu.Unlock()
		seq++
		views[v][t].State, views[v][t].Seq = st, seq
		return views[v][t]
	}
	waitAll := func(t int, st gslb.State) {
		for _, hm := range maps {
			for hm.Snapshot().State(benchTarget(t)) != st {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}

	bytes := func(nodes []*Node) (sent, recv uint64) {
		for _, n := range nodes {
			s, r := n.Bytes()
			sent, recv = sent+s, recv+r
		}
		return sent, recv
	}
	dnsSent0, dnsRecv0 := bytes(dns)
	vSent0, vRecv0 := bytes(vantages)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		t := i % benchTargets
		vantages[0].SendResults(Results{Vantage: "v0", Reports: []Report{set(0, t, gslb.Down)}})
		vantages[1].SendResults(Results{Vantage: "v1", Reports: []Report{set(1, t, gslb.Down)}})
		b.StartTimer()
		vantages[2].SendResults(Results{Vantage: "v2", Reports: []Report{set(2, t, gslb.Down)}})
		waitAll(t, gslb.Down)
		b.StopTimer()
		for v := range 3 {
			vantages[v].SendResults(Results{Vantage: fmt.Sprintf("v%d", v), Reports: []Report{set(v, t, gslb.Up)}})
		}
		waitAll(t, gslb.Up)
	}
	b.StopTimer()
	// Bandwidth over at least five refreshes, so that a short run does
	// not count one burst over a fraction of its period.
	if wait := 5*benchRefresh - time.Since(start); wait > 0 {
		time.Sleep(wait)
	}
	elapsed := time.Since(start)
	perSec := func(b0, b1 uint64, n int) float64 { return float64(b1-b0) / float64(n) / elapsed.Seconds() }
	dnsSent, dnsRecv := bytes(dns)
	vSent, vRecv := bytes(vantages)
	b.ReportMetric(perSec(dnsSent0, dnsSent, benchDNS), "dns-sent-B/s")
	b.ReportMetric(perSec(dnsRecv0, dnsRecv, benchDNS), "dns-recv-B/s")
	b.ReportMetric(perSec(vSent0, vSent, benchVantages), "vantage-sent-B/s")
	b.ReportMetric(perSec(vRecv0, vRecv, benchVantages), "vantage-recv-B/s")
	b.ReportMetric(float64(len(dns[0].fullState(time.Now()))), "pushpull-B")
}

func benchTarget(i int) health.TargetID {
	return health.TargetID(fmt.Sprintf("r%d/10.%d.%d.%d", i%3, i/65536, i/256%256, i%256))
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

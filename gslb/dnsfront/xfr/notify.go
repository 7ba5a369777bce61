package xfr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// NOTIFY timing: each attempt waits NotifyTimeout for the answer; retries
// start NotifyBackoff apart and double up to NotifyMaxBackoff; a secondary
// that acknowledges nothing is given up on once the zone's SOA refresh
// has passed (at least NotifyMinGiveUp), as by then it asks on its own.
const (
	NotifyTimeout    = 2 * time.Second
	NotifyBackoff    = time.Second
	NotifyMaxBackoff = time.Minute
	NotifyMinGiveUp  = 5 * time.Minute
)

// Notifier sends NOTIFY messages (RFC 1996) to secondaries in the
// background: a reload hands it the changed zones and goes on at once.
// One notify per zone and secondary is in flight: a newer serial
// replaces the one still being retried.
type Notifier struct {
	metrics *Metrics
	log     *slog.Logger
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	pending map[string]*context.CancelFunc // by zone and target: the attempt in flight
	// timing, the constants above but for tests
	timeout, backoff, maxBackoff, minGiveUp time.Duration
}

// NewNotifier returns a notifier; Close stops what it still retries.
func NewNotifier(metrics *Metrics, log *slog.Logger) *Notifier {
	ctx, stop := context.WithCancel(context.Background())
	return &Notifier{metrics: metrics, log: log, ctx: ctx, stop: stop, pending: map[string]*context.CancelFunc{},
		timeout: NotifyTimeout, backoff: NotifyBackoff, maxBackoff: NotifyMaxBackoff, minGiveUp: NotifyMinGiveUp}
}

// Notify tells each target (ip:port) that the zone of soa is now at its
// serial, signing with key when it is not nil. It does not wait.
func (n *Notifier) Notify(zone string, soa *dns.SOA, targets []string, key *Key) {
	giveUp := max(time.Duration(soa.Refresh)*time.Second, n.minGiveUp)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	for _, target := range targets {
		id := zone + " " + target
		if cancel, ok := n.pending[id]; ok {
			(*cancel)()
			n.metrics.notify(zone, "superseded")
		}
		ctx, cancel := context.WithTimeout(n.ctx, giveUp)
		entry := &cancel
		n.pending[id] = entry
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.send(ctx, zone, soa, target, key)
			cancel()
			n.mu.Lock()
			if n.pending[id] == entry { // not replaced meanwhile
				delete(n.pending, id)
			}
			n.mu.Unlock()
		}()
	}
}

// send notifies target until it acknowledges or ctx ends.
func (n *Notifier) send(ctx context.Context, zone string, soa *dns.SOA, target string, key *Key) {
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		err := n.once(ctx, zone, soa, target, key)
		switch {
		case err == nil:
			n.metrics.notify(zone, "acked")
			n.log.Info("notify acknowledged", "zone", zone, "serial", soa.Serial, "target", target, "attempts", attempt)
			return
		case ctx.Err() != nil:
			n.ended(ctx, zone, soa, target)
			return
		}
		n.metrics.notify(zone, "failed")
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		n.log.Log(ctx, level, "notify not acknowledged; retrying", "zone", zone, "serial", soa.Serial, "target", target,
			"attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			n.ended(ctx, zone, soa, target)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, n.maxBackoff)
	}
}

// ended says why retries stopped: given up at the deadline; replaced by a
// newer serial or stopped (counted where that happened) say nothing.
func (n *Notifier) ended(ctx context.Context, zone string, soa *dns.SOA, target string) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		n.metrics.notify(zone, "gave_up")
		n.log.Warn("notify given up: the secondary will check at its refresh", "zone", zone, "serial", soa.Serial, "target", target)
	}
}

// once sends one NOTIFY and reads the acknowledgement.
func (n *Notifier) once(ctx context.Context, zone string, soa *dns.SOA, target string, key *Key) error {
	m := new(dns.Msg)
	m.SetNotify(dns.Fqdn(zone))
	m.Authoritative = true
	m.Answer = []dns.RR{soa} // RFC 1996 3.7: the new SOA, as a hint
	c := &dns.Client{Net: "udp", Timeout: n.timeout}
	if key != nil {
		c.TsigProvider = provider{key.Name: *key}
		m.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	conn, err := c.DialContext(ctx, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A newer serial or Close ends the wait for an answer at once.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	switch {
	case err != nil:
		return err
	case r.Opcode != dns.OpcodeNotify || r.Rcode != dns.RcodeSuccess:
		return fmt.Errorf("answered %s %s", dns.OpcodeToString[r.Opcode], dns.RcodeToString[r.Rcode])
	}
	return nil
}

// Close stops every retry and waits for the senders to return.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.stop()
	n.mu.Unlock()
	n.wg.Wait()
}

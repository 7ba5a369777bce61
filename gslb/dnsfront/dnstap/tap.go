package dnstap

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Decision is the GSLB decision behind a dynamic answer, as the extra
// field of its AUTH_RESPONSE frame says it.
type Decision struct {
	Record  string // the record's name
	Type    string // its type: A, AAAA; HTTPS for an HTTPS answer
	Policy  string // the region policy
	Region  string // the region that answered; "" for none
	Outcome string // answered, fallback, fail-open, servfail, nodata
	Scope   int    // the ECS scope of the answer
}

// Message is one query and its response, as the answer path hands it to
// Put (its slices are copied there) and as the writer encodes it.
type Message struct {
	Query        []byte
	Response     []byte // nil: the query got no response (rate limited, dropped)
	QueryTime    time.Time
	ResponseTime time.Time
	Client       netip.AddrPort
	Server       netip.AddrPort // zero when unknown (a wildcard socket)
	TCP          bool
	Decided      bool // Decision is set
	Decision     Decision

	respBuf []byte // a queued message's response, kept for its capacity
}

// bank is a batch of queued messages: the answer path fills one while
// the writer writes the other, and they swap at each drain.
type bank struct {
	msgs []Message
	n    int
}

// Tap is a running dnstap output. Its methods are safe for concurrent use.
type Tap struct {
	cfg      Config
	identity []byte
	version  []byte
	log      *slog.Logger
	out      output

	mu    sync.Mutex
	fill  *bank         // the bank Put copies into; guarded by mu
	spare *bank         // the writer's
	kick  chan struct{} // wakes the writer before its tick: the bank fills up
	now   atomic.Int64  // Unix nanoseconds, set by the writer each tick

	sent    atomic.Uint64 // frames written
	dropped atomic.Uint64 // frames dropped: the bank full, or no collector

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New starts a tap for cfg (valid, and On), identifying itself as
// identity and version unless cfg names its own.
func New(cfg Config, identity, version string, log *slog.Logger) (*Tap, error) {
	if cfg.Identity != "" {
		identity = cfg.Identity
	}
	if cfg.Version != "" {
		version = cfg.Version
	}
	out, err := newOutput(cfg)
	if err != nil {
		return nil, err
	}
	t := &Tap{
		cfg: cfg, identity: []byte(identity), version: []byte(version), log: log, out: out,
		fill: &bank{msgs: make([]Message, cfg.Buffer)}, spare: &bank{msgs: make([]Message, cfg.Buffer)},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	t.now.Store(time.Now().UnixNano())
	go t.run()
	return t, nil
}

// Config returns the settings the tap runs with.
func (t *Tap) Config() Config { return t.cfg }

// Sampled decides whether this query is logged.
func (t *Tap) Sampled() bool {
	return t.cfg.Sample >= 1 || rand.Float64() < t.cfg.Sample
}

// Now is the time the writer last read, to the millisecond (its tick): a
// read of the clock costs 170 ns on a KVM guest, as much as the rest of
// logging a query.
func (t *Tap) Now() time.Time { return time.Unix(0, t.now.Load()) }

// Put copies m into the bank the writer takes next, or drops it, counted,
// when the bank is full (the writer behind, or stuck on a collector). It
// never waits for the writer. A bank half full wakes the writer.
func (t *Tap) Put(m *Message) {
	t.mu.Lock()
	b := t.fill
	if b.n == len(b.msgs) {
		t.mu.Unlock()
		t.dropped.Add(uint64(t.frames(m.Response != nil)))
		return
	}
	d := &b.msgs[b.n]
	b.n++
	n := b.n
	d.Query = append(d.Query[:0], m.Query...)
	d.respBuf = append(d.respBuf[:0], m.Response...)
	d.Response = nil
	if m.Response != nil {
		d.Response = d.respBuf
	}
	d.QueryTime, d.ResponseTime, d.Client, d.Server, d.TCP = m.QueryTime, m.ResponseTime, m.Client, m.Server, m.TCP
	d.Decided, d.Decision = m.Decided, m.Decision
	t.mu.Unlock()
	if n == len(b.msgs)/2+1 {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// frames is how many frames a message makes.
func (t *Tap) frames(response bool) int {
	n := 0
	if t.cfg.LogQueries() {
		n++
	}
	if response && t.cfg.LogResponses() {
		n++
	}
	return n
}

// Sent and Dropped count frames: written, and lost (no free message, or
// no collector to write to).
func (t *Tap) Sent() uint64 { return t.sent.Load() }

// Dropped counts the frames lost.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// Close stops the writer once it has written what is queued (within the
// write timeout), and closes the output. Messages sent afterwards are
// dropped.
func (t *Tap) Close() {
	t.closeOnce.Do(func() {
		close(t.stop)
		<-t.done
	})
}

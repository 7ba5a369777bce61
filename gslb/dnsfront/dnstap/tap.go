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

// Message is one query and its response on their way to the writer. The
// answer path fills it (Tap.Get), the writer encodes it; its buffers are
// reused message after message.
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
}

// Tap is a running dnstap output. Its methods are safe for concurrent use.
type Tap struct {
	cfg      Config
	identity []byte
	version  []byte
	log      *slog.Logger
	out      output

	free  chan *Message // messages the answer path may fill
	queue chan *Message // filled messages, for the writer
	kick  chan struct{} // wakes the writer before its tick: the queue fills up

	sent    atomic.Uint64 // frames written
	dropped atomic.Uint64 // frames dropped: no free message, or no collector

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
		free: make(chan *Message, cfg.Buffer), queue: make(chan *Message, cfg.Buffer),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	for range cfg.Buffer {
		t.free <- new(Message)
	}
	go t.run()
	return t, nil
}

// Config returns the settings the tap runs with.
func (t *Tap) Config() Config { return t.cfg }

// Sampled decides whether this query is logged.
func (t *Tap) Sampled() bool {
	return t.cfg.Sample >= 1 || rand.Float64() < t.cfg.Sample
}

// Get returns a message to fill and Send, or nil when every message is
// waiting for the writer: the query is then dropped, and counted.
func (t *Tap) Get() *Message {
	select {
	case m := <-t.free:
		return m
	default:
		t.dropped.Add(uint64(t.frames(true)))
		return nil
	}
}

// Send queues a message from Get. It never blocks: there is room in the
// queue for every message. A queue a quarter full wakes the writer.
func (t *Tap) Send(m *Message) {
	t.queue <- m
	if len(t.queue) == cap(t.queue)/4+1 {
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

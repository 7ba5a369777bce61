package rrl

import (
	"net/netip"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// Class is the kind of response a bucket counts, as Knot's mod-rrl and
// BIND sort them: an attacker reflecting one kind cannot spend the
// allowance of another.
type Class uint8

// Response classes.
const (
	Answer   Class = iota // data for the name asked, keyed by the name and type
	Dynamic               // a GSLB answer, keyed by the record
	Wildcard              // data synthesised from a wildcard, keyed by its owner
	NoData                // the name exists, the type does not, keyed by the name
	NXDomain              // keyed by the zone: random names share one bucket
	Referral              // keyed by the delegation
	Error                 // REFUSED, FORMERR, SERVFAIL, NOTIMP...: keyed by the client alone
	numClasses
)

var classNames = [numClasses]string{"answer", "dynamic", "wildcard", "nodata", "nxdomain", "referral", "error"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// Action is what to do with a response.
type Action uint8

// Actions.
const (
	Send Action = iota // within the rate
	Slip               // over the rate: send an empty truncated reply instead, so a real client retries over TCP
	Drop               // over the rate: send nothing
)

func (a Action) String() string {
	return [...]string{"send", "slip", "drop"}[a]
}

// Table is a fixed-size table of token buckets, one per client prefix,
// class and name, as Knot's: its memory is set by Config.TableSize and does
// not grow with the number of sources. A source the table has no room for
// takes the slot of the stalest bucket of its set, so a flood of spoofed
// prefixes evicts only buckets that were idle anyway. Safe for concurrent
// use; Judge allocates nothing.
type Table struct {
	cfg     Config
	buckets []bucket
	mask    uint64 // sets - 1
	locks   [lockStripes]sync.Mutex
	exempt  []netip.Prefix
}

// ways is how many buckets a key may live in; lockStripes how many locks
// share the sets; logInterval (tenths of a second) how often a limited
// bucket is logged again.
const (
	ways        = 4
	lockStripes = 64
	logInterval = 100
)

type bucket struct {
	key     uint64
	stamp   uint32 // tenths of a second when tokens were last topped up
	tokens  int32  // responses left in this second, times 10
	limited uint32 // responses over the rate since the bucket was taken
	logged  uint32 // tenths of a second, plus one, when the bucket last asked to be logged
}

// New returns a table for cfg, which must be valid (Config.Validate).
func New(cfg Config) *Table {
	sets := uint64(1)
	for sets*ways < uint64(cfg.TableSize) {
		sets <<= 1
	}
	t := &Table{cfg: cfg, buckets: make([]bucket, sets*ways), mask: sets - 1}
	for _, p := range cfg.Exempt {
		t.exempt = append(t.exempt, netip.MustParsePrefix(p).Masked())
	}
	return t
}

// Buckets returns the table's size in buckets.
func (t *Table) Buckets() int { return len(t.buckets) }

// Config returns the table's configuration, to tell whether a reload
// may keep the table (and its buckets).
func (t *Table) Config() Config { return t.cfg }

// Verdict is Judge's answer: what to do, and whether this is the first
// limited response of the bucket in the log interval (log it, once).
type Verdict struct {
	Action Action
	Log    bool
}

// Judge counts a response of class c for name (the key's name: the
// question, the record, the wildcard's owner, the zone or the delegation;
// empty for errors) to client, and says whether to send it. now is a
// clock in tenths of a second, kept by the caller (a clock read per
// response costs more than many answers). exempt is set for clients that
// proved their address (a valid server cookie).
func (t *Table) Judge(now uint32, client netip.Addr, c Class, name string, qtype uint16, exempt bool) Verdict {
	if exempt || t.isExempt(client) {
		return Verdict{}
	}
	key := t.key(client, c, name, qtype)
	set := key & t.mask
	lock := &t.locks[set%lockStripes]
	lock.Lock()
	b := t.find(set, key, now)
	v := t.spend(b, now)
	lock.Unlock()
	return v
}

// key hashes what a bucket counts: the client's prefix, the class and the
// name (and type, for answers).
func (t *Table) key(client netip.Addr, c Class, name string, qtype uint16) uint64 {
	a := t.Prefix(client).Addr().As16()
	var head [20]byte
	copy(head[:16], a[:])
	head[16], head[17], head[18] = byte(c), byte(qtype>>8), byte(qtype)
	var h xxhash.Digest
	h.Reset()
	_, _ = h.Write(head[:])
	_, _ = h.WriteString(name)
	return h.Sum64() | 1 // 0 marks a free bucket
}

// find returns the bucket of key in its set: its own, a free one, or the
// one idle longest.
func (t *Table) find(set, key uint64, now uint32) *bucket {
	ws := t.buckets[set*ways : set*ways+ways]
	var free, oldest *bucket
	for i := range ws {
		b := &ws[i]
		switch {
		case b.key == key:
			return b
		case b.key == 0:
			free = b
		case oldest == nil || now-b.stamp > now-oldest.stamp:
			oldest = b
		}
	}
	if free == nil {
		free = oldest
	}
	*free = bucket{key: key, stamp: now, tokens: int32(t.cfg.Rate) * 10}
	return free
}

// spend tops up b for the time since it was last used (rate per second,
// at most one second's worth) and takes one response from it.
func (t *Table) spend(b *bucket, now uint32) Verdict {
	rate := int32(t.cfg.Rate) * 10
	if elapsed := now - b.stamp; elapsed > 0 {
		b.tokens = min(rate, b.tokens+int32(min(elapsed, 10))*int32(t.cfg.Rate))
		b.stamp = now
	}
	if b.tokens >= 10 {
		b.tokens -= 10
		return Verdict{}
	}
	b.limited++
	v := Verdict{Action: Drop}
	if slip := *t.cfg.Slip; slip > 0 && b.limited%uint32(slip) == 0 {
		v.Action = Slip
	}
	if b.logged == 0 || now+1-b.logged >= logInterval {
		b.logged, v.Log = now+1, true // +1: 0 is "never"
	}
	return v
}

func (t *Table) isExempt(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Prefix returns the client prefix buckets are kept for, for logs.
func (t *Table) Prefix(client netip.Addr) netip.Prefix {
	client = client.Unmap()
	bits := t.cfg.IPv6Prefix
	if client.Is4() {
		bits = t.cfg.IPv4Prefix
	}
	p, _ := client.Prefix(bits)
	return p
}

package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// tableKey is a client address or a header or claim value. Keeping the
// address as a netip.Addr, not its text, spares an allocation per request
// on the most common key; the two never collide, since a value key has
// no address.
type tableKey struct {
	addr netip.Addr
	s    string
}

// maxValueKey is the longest value kept as it is; longer ones are kept as
// their SHA-256 so that a client cannot make a key cost the table more
// than this.
const maxValueKey = 64

func valueKey(v string) tableKey {
	if len(v) <= maxValueKey {
		return tableKey{s: v}
	}
	sum := sha256.Sum256([]byte(v))
	// NUL cannot occur in a header value, so a hashed key cannot equal a
	// value sent as it is.
	return tableKey{s: "\x00" + string(sum[:])}
}

// String renders k for the logs: an address as it is, any other value as
// a prefix of its SHA-256, so that API keys and claims never reach a log.
func (k tableKey) String() string {
	if k.addr.IsValid() || k.s == "" {
		return k.addr.String()
	}
	sum := sha256.Sum256([]byte(k.s))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// Keys are spread over shards so that requests for different keys rarely
// wait for the same lock. A shard holds at least minShardKeys, so that a
// small table stays one exact LRU.
const (
	maxShards    = 16
	minShardKeys = 256
	// expireScan bounds the stale keys one new key removes, so that the
	// insertion's cost stays constant.
	expireScan = 2
)

type table struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
	ttl    int64 // nanoseconds

	evicted, expired atomic.Uint64
}

type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[tableKey, *entry]
	// The padding keeps each shard's lock on its own cache line.
	_ [40]byte
}

func newTable(maxKeys int, ttl time.Duration) *table {
	n := 1
	for n < maxShards && maxKeys/(n*2) >= minShardKeys {
		n *= 2
	}
	t := &table{
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		ttl:    int64(ttl),
	}
	for i := range t.shards {
		// NewLRU fails only for a size below 1, which New rules out.
		t.shards[i].lru, _ = simplelru.NewLRU[tableKey, *entry](maxKeys/n, nil)
	}
	return t
}

func (t *table) shard(k tableKey) *shard {
	if t.mask == 0 {
		return &t.shards[0]
	}
	return &t.shards[maphash.Comparable(t.seed, k)&t.mask]
}

// get returns k's entry, adding one if k is new. now is in nanoseconds.
func (t *table) get(k tableKey, now int64) *entry {
	s := t.shard(k)
	s.mu.Lock()
	e, ok := s.lru.Get(k)
	if !ok {
		// Lookups move keys to the hot end, so the stale ones gather at
		// the cold end, where a new key looks for them.
		for range expireScan {
			_, old, ok := s.lru.GetOldest()
			if !ok || now-old.seen.Load() <= t.ttl {
				break
			}
			s.lru.RemoveOldest()
			t.expired.Add(1)
		}
		e = &entry{}
		e.seen.Store(now)
		if s.lru.Add(k, e) {
			t.evicted.Add(1)
		}
	}
	s.mu.Unlock()
	return e
}

func (t *table) stats() (keys int, evicted, expired uint64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		keys += s.lru.Len()
		s.mu.Unlock()
	}
	return keys, t.evicted.Load(), t.expired.Load()
}

// entry is one key's counters.
type entry struct {
	mu sync.Mutex
	// seen is the last request's time in nanoseconds. It is atomic
	// because expiry reads it under the shard's lock, not the entry's.
	seen atomic.Int64

	// Token bucket; nil until the first request.
	tb *rate.Limiter

	// Sliding window: the current window's number (time / window) and
	// the requests counted in it and in the one before.
	win, cur, prev int64
}

// stale reports, under e.mu, whether e was idle for longer than the
// table's TTL, and marks it seen at now.
func (e *entry) touch(l *Limiter, now int64) (stale bool) {
	last := e.seen.Swap(now)
	return now-last > l.table.ttl
}

func (e *entry) takeToken(l *Limiter, now time.Time) Decision {
	e.mu.Lock()
	if e.touch(l, now.UnixNano()) || e.tb == nil {
		e.tb = rate.NewLimiter(rate.Limit(l.rate), l.burst)
	}
	ok := e.tb.AllowN(now, 1)
	tokens := e.tb.TokensAt(now)
	e.mu.Unlock()

	d := Decision{
		Allowed:   ok,
		Remaining: int(math.Floor(tokens + 1e-9)),
		Reset:     seconds((float64(l.burst) - tokens) / l.rate),
		limited:   true,
	}
	if !ok {
		d.RetryAfter = seconds((1 - tokens) / l.rate)
	}
	return d
}

// seconds converts a float number of seconds to a Duration, rounding up
// so that a client that waits that long is sure to find its token.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// windowEpsilon absorbs float error in the weighted count, so that a
// previous window weighted to exactly an integer does not refuse one
// request too many.
const windowEpsilon = 1e-9

func (e *entry) takeWindow(l *Limiter, now int64) Decision {
	w := l.window
	idx := now / w
	elapsed := now - idx*w

	e.mu.Lock()
	if e.touch(l, now) {
		e.win, e.cur, e.prev = idx, 0, 0
	}
	switch {
	case idx == e.win:
	case idx == e.win+1:
		e.win, e.prev, e.cur = idx, e.cur, 0
	case idx > e.win+1:
		e.win, e.prev, e.cur = idx, 0, 0
	default:
		// The clock went back into an earlier window: count the request
		// in the current one rather than forget what is known.
		elapsed = 0
	}
	weighted := float64(e.prev) * float64(w-elapsed) / float64(w)
	est := weighted + float64(e.cur)
	ok := est+1 <= float64(l.limit)+windowEpsilon
	if ok {
		e.cur++
		est++
	}
	prev, cur := e.prev, e.cur
	e.mu.Unlock()

	d := Decision{
		Allowed:   ok,
		Remaining: max(0, int(math.Floor(float64(l.limit)-est+windowEpsilon))),
		Reset:     time.Duration(w - elapsed),
		limited:   true,
	}
	if !ok {
		d.RetryAfter = windowRetry(l.limit, w, elapsed, prev, cur)
	}
	return d
}

// windowRetry returns how long after elapsed (into the current window)
// one more request fits: later in this window if the previous window's
// weight can fall far enough, else in the next one, where this window's
// count becomes the weighted one.
func windowRetry(limit int, w, elapsed, prev, cur int64) time.Duration {
	// Integer arithmetic, since a float's last bit would turn an exact
	// whole number of seconds into one second more once rounded up.
	room := int64(limit-1) - cur
	if room >= 0 && prev > room {
		// prev×(w−e)/w ≤ room  ⇔  e ≥ w×(prev−room)/prev
		if at := mulDivCeil(w, prev-room, prev); at < w {
			// At least a nanosecond, should the float estimate that
			// refused the request disagree with this exact one.
			return time.Duration(max(at-elapsed, 1))
		}
	}
	d := w - elapsed
	if need := int64(limit - 1); cur > need {
		d += mulDivCeil(w, cur-need, cur)
	}
	return time.Duration(d)
}

// mulDivCeil returns ⌈a×b/c⌉ for a, b ≥ 0 and b ≤ c, without overflowing
// for windows of days and counts of millions.
func mulDivCeil(a, b, c int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	q, r := bits.Div64(hi, lo, uint64(c))
	if r != 0 {
		q++
	}
	return int64(q)
}

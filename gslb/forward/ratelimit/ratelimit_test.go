package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

func TestTokenBucket(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Config{Rate: 10, Burst: 5, Now: clk.Now})
	r := request("192.0.2.1:1234")

	steps := []struct {
		advance    time.Duration
		requests   int
		allowed    int
		retryAfter time.Duration // of the last request, when refused
	}{
		{0, 6, 5, 100 * time.Millisecond},                      // the whole burst at once
		{100 * time.Millisecond, 2, 1, 100 * time.Millisecond}, // one token a tenth of a second
		{250 * time.Millisecond, 3, 2, 50 * time.Millisecond},  // 2.5 tokens: half a token left
		{10 * time.Second, 7, 5, 100 * time.Millisecond},       // never more than the burst
		{time.Second, 10, 5, 100 * time.Millisecond},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		var last Decision
		allowed := 0
		for range s.requests {
			last = l.Allow(r)
			if last.Allowed {
				allowed++
			}
		}
		if allowed != s.allowed {
			t.Errorf("step %d: %d of %d allowed, want %d", i, allowed, s.requests, s.allowed)
		}
		if last.Allowed || last.RetryAfter != s.retryAfter || last.Status != http.StatusTooManyRequests {
			t.Errorf("step %d: last decision %+v, want refused with 429 and RetryAfter %v", i, last, s.retryAfter)
		}
	}
	if st := l.Stats(); st.Allowed != 18 || st.Limited != 10 || st.Keys != 1 {
		t.Errorf("stats %+v, want 18 allowed, 10 limited, 1 key", st)
	}
}

func TestTokenBucketRemaining(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Config{Rate: 1, Burst: 3, Now: clk.Now})
	r := request("192.0.2.1:1")
	for i, want := range []int{2, 1, 0} {
		d := l.Allow(r)
		if !d.Allowed || d.Remaining != want {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i, d, want)
		}
		// The bucket is full again once the spent tokens come back.
		if wantReset := time.Duration(i+1) * time.Second; d.Reset != wantReset {
			t.Errorf("request %d: reset %v, want %v", i, d.Reset, wantReset)
		}
	}
}

func TestSlidingWindow(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Config{Algorithm: SlidingWindow, Limit: 10, Window: 10 * time.Second, Now: clk.Now})
	r := request("192.0.2.1:1234")

	steps := []struct {
		at         time.Duration // since the start of window 0
		requests   int
		allowed    int
		retryAfter time.Duration
	}{
		// Window 0 fills up; the next request fits at 11s, where
		// window 0 weighs 0.9 and counts 9.
		{0, 11, 10, 11 * time.Second},
		{5 * time.Second, 1, 0, 6 * time.Second},
		// Halfway into window 1 window 0 counts 5; the sixth request
		// waits a second for it to count 4.
		{15 * time.Second, 6, 5, time.Second},
		{16 * time.Second, 2, 1, time.Second},
		// Window 1 (6 requests) weighs 0.9 a second into window 2, and
		// 5/6 at 21⅔s, when 4 more requests leave room for one.
		{21 * time.Second, 5, 4, 666666667 * time.Nanosecond},
		// A window with no requests: window 2 no longer counts.
		{41 * time.Second, 12, 10, 10 * time.Second},
	}
	var at time.Duration
	for i, s := range steps {
		clk.Advance(s.at - at)
		at = s.at
		var last Decision
		allowed := 0
		for range s.requests {
			last = l.Allow(r)
			if last.Allowed {
				allowed++
			}
		}
		if allowed != s.allowed {
			t.Errorf("at %v: %d of %d allowed, want %d", s.at, allowed, s.requests, s.allowed)
		}
		if last.Allowed || last.RetryAfter != s.retryAfter {
			t.Errorf("step %d at %v: last decision %+v, want refused with RetryAfter %v", i, s.at, last, s.retryAfter)
		}
	}
}

// TestSlidingWindowRetryIsExact checks RetryAfter against the limiter
// itself: a request just before it is refused, one at it is allowed.
func TestSlidingWindowRetryIsExact(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		fill  []time.Duration // times of allowed requests, since window 0's start
		at    time.Duration   // the refused request
	}{
		{"full window", 10, repeat(0, 10), 3 * time.Second},
		{"limit one", 1, repeat(0, 1), 0},
		{"weighted previous", 10, append(repeat(0, 10), repeat(12*time.Second, 2)...), 12 * time.Second},
		{"spread", 4, []time.Duration{time.Second, 9 * time.Second, 11 * time.Second, 12 * time.Second}, 12 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			l := mustNew(t, Config{Algorithm: SlidingWindow, Limit: c.limit, Window: 10 * time.Second, Now: clk.Now})
			r := request("192.0.2.1:1")
			var now time.Duration
			for _, at := range c.fill {
				clk.Advance(at - now)
				now = at
				if d := l.Allow(r); !d.Allowed {
					t.Fatalf("fill request at %v refused: %+v", at, d)
				}
			}
			clk.Advance(c.at - now)
			d := l.Allow(r)
			if d.Allowed || d.RetryAfter <= 0 {
				t.Fatalf("request at %v: %+v, want refused with a RetryAfter", c.at, d)
			}
			clk.Advance(d.RetryAfter - time.Millisecond)
			if d2 := l.Allow(r); d2.Allowed {
				t.Errorf("allowed a millisecond before RetryAfter %v", d.RetryAfter)
			}
			clk.Advance(time.Millisecond)
			if d2 := l.Allow(r); !d2.Allowed {
				t.Errorf("refused at RetryAfter %v: %+v", d.RetryAfter, d2)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

func TestKeys(t *testing.T) {
	realIP := func(r *http.Request) netip.Addr {
		a, _ := netip.ParseAddr(r.Header.Get("X-Real-IP"))
		return a
	}
	long := strings.Repeat("k", 200)
	type step struct {
		req     *http.Request
		n       int
		allowed int
		status  int // of the last refusal; 0 when every request is allowed
	}
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"client IP", Config{}, []step{
			{request("192.0.2.1:1000"), 3, 2, 429},
			{request("192.0.2.1:2000"), 1, 0, 429}, // the port does not matter
			{request("192.0.2.2:1000"), 3, 2, 429},
		}},
		{"IPv4-mapped IPv6 is IPv4", Config{}, []step{
			{request("[::ffff:192.0.2.1]:1000"), 1, 1, 0},
			{request("192.0.2.1:1000"), 2, 1, 429},
		}},
		{"IPv6 grouped by /64", Config{}, []step{
			{request("[2001:db8::1]:1000"), 1, 1, 0},
			{request("[2001:db8::ffff:2]:1000"), 2, 1, 429},
			{request("[2001:db8:0:1::1]:1000"), 2, 2, 0},
		}},
		{"IPv6 per address", Config{IPv6PrefixLen: 128}, []step{
			{request("[2001:db8::1]:1000"), 3, 2, 429},
			{request("[2001:db8::2]:1000"), 3, 2, 429},
		}},
		{"ClientIP from the proxy", Config{ClientIP: realIP}, []step{
			{request("127.0.0.1:1", "X-Real-IP", "198.51.100.7"), 3, 2, 429},
			{request("127.0.0.1:1", "X-Real-IP", "198.51.100.8"), 2, 2, 0},
		}},
		{"header", Config{Key: KeyHeader, Header: "X-Tenant"}, []step{
			{request("192.0.2.1:1", "X-Tenant", "a"), 3, 2, 429},
			{request("192.0.2.1:1", "X-Tenant", "b"), 2, 2, 0},
			{request("192.0.2.1:1"), 1, 0, 400},
		}},
		{"header missing falls back to IP", Config{Key: KeyHeader, Header: "X-Tenant", Fallback: FallbackClientIP}, []step{
			{request("192.0.2.1:1"), 3, 2, 429},
			{request("192.0.2.2:1"), 1, 1, 0},
			{request("192.0.2.1:1", "X-Tenant", "a"), 2, 2, 0},
		}},
		{"API key", Config{Key: KeyAPIKey}, []step{
			{request("192.0.2.1:1", "X-API-Key", "k1"), 3, 2, 429},
			{request("192.0.2.1:1", "X-API-Key", "k2"), 2, 2, 0},
			{request("192.0.2.1:1", "X-API-Key", long), 3, 2, 429},
			{request("192.0.2.1:1", "X-API-Key", long+"x"), 2, 2, 0},
			{request("192.0.2.1:1", "Authorization", "k1"), 1, 0, 401},
		}},
		{"API key in another header", Config{Key: KeyAPIKey, Header: "apikey"}, []step{
			{request("192.0.2.1:1", "Apikey", "k1"), 3, 2, 429},
			{request("192.0.2.1:1", "X-API-Key", "k1"), 1, 0, 401},
		}},
		{"API key missing falls back to IP", Config{Key: KeyAPIKey, Fallback: FallbackClientIP}, []step{
			{request("192.0.2.1:1"), 3, 2, 429},
			{request("192.0.2.1:1", "X-API-Key", "k1"), 2, 2, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Rate, c.cfg.Burst = 1, 2
			c.cfg.Now = newClock().Now
			l := mustNew(t, c.cfg)
			for i, s := range c.steps {
				allowed, status := 0, 0
				for range s.n {
					d := l.Allow(s.req)
					if d.Allowed {
						allowed++
					} else {
						status = d.Status
					}
				}
				if allowed != s.allowed || status != s.status {
					t.Errorf("step %d: %d of %d allowed, status %d; want %d allowed, status %d",
						i, allowed, s.n, status, s.allowed, s.status)
				}
			}
		})
	}
}

func TestTableBound(t *testing.T) {
	clk := newClock()
	const maxKeys = 8
	l := mustNew(t, Config{Key: KeyAPIKey, Rate: 1, Burst: 1, MaxKeys: maxKeys, Now: clk.Now})
	key := func(i int) *http.Request { return request("192.0.2.1:1", "X-API-Key", fmt.Sprintf("key-%d", i)) }

	for i := range 100 {
		if !l.Allow(key(i)).Allowed {
			t.Fatalf("key %d: first request refused", i)
		}
		if st := l.Stats(); st.Keys > maxKeys {
			t.Fatalf("after %d keys the table holds %d, cap %d", i+1, st.Keys, maxKeys)
		}
	}
	st := l.Stats()
	if st.Keys != maxKeys || st.Evicted != 100-maxKeys {
		t.Errorf("stats %+v, want %d keys and %d evicted", st, maxKeys, 100-maxKeys)
	}
	// A key still in the table has spent its token; an evicted one
	// starts again with a full bucket.
	if l.Allow(key(99)).Allowed {
		t.Error("key 99 (in the table) allowed a second request")
	}
	if !l.Allow(key(0)).Allowed {
		t.Error("key 0 (evicted) refused: it should start fresh")
	}
}

func TestTableBoundSharded(t *testing.T) {
	const maxKeys = 4096
	l := mustNew(t, Config{Key: KeyAPIKey, Rate: 1, Burst: 1, MaxKeys: maxKeys, Now: newClock().Now})
	if n := len(l.table.shards); n != 16 {
		t.Fatalf("%d shards, want 16", n)
	}
	for i := range 3 * maxKeys {
		l.Allow(request("192.0.2.1:1", "X-API-Key", fmt.Sprintf("key-%d", i)))
	}
	if st := l.Stats(); st.Keys > maxKeys || st.Keys < maxKeys*9/10 || st.Keys+int(st.Evicted) != 3*maxKeys {
		t.Errorf("stats %+v: want at most %d keys, most of the cap used, and every other key evicted", st, maxKeys)
	}
}

func TestKeyTTL(t *testing.T) {
	clk := newClock()
	// Rate 1, burst 2: an idle key is whole again after 2s, the
	// default TTL.
	// MaxKeys keeps the table one shard, so that b's arrival sweeps a.
	l := mustNew(t, Config{Key: KeyAPIKey, Rate: 1, Burst: 2, MaxKeys: 100, Now: clk.Now})
	a := request("192.0.2.1:1", "X-API-Key", "a")
	b := request("192.0.2.1:1", "X-API-Key", "b")
	if got := allowN(l, a, 3); got != 2 {
		t.Fatalf("a: %d allowed, want 2", got)
	}
	clk.Advance(2*time.Second + time.Nanosecond)
	// A new key sweeps the idle one from the cold end of the table.
	allowN(l, b, 1)
	if st := l.Stats(); st.Keys != 1 || st.Expired != 1 {
		t.Errorf("stats %+v, want a expired and only b left", st)
	}
	if got := allowN(l, a, 3); got != 2 {
		t.Errorf("a after expiry: %d allowed, want 2", got)
	}

	// A shorter TTL forgets a key before its bucket refills.
	clk = newClock()
	l = mustNew(t, Config{Key: KeyAPIKey, Rate: 1, Burst: 10, KeyTTL: time.Second, Now: clk.Now})
	if got := allowN(l, a, 11); got != 10 {
		t.Fatalf("a: %d allowed, want 10", got)
	}
	clk.Advance(time.Second)
	if got := allowN(l, a, 11); got != 1 {
		t.Errorf("a at the TTL: %d allowed, want 1 (refilled token only)", got)
	}
	clk.Advance(time.Second + time.Nanosecond)
	if got := allowN(l, a, 11); got != 10 {
		t.Errorf("a past the TTL: %d allowed, want a fresh 10", got)
	}
}

func TestHeaders(t *testing.T) {
	clk := newClock()
	cases := []struct {
		name   string
		cfg    Config
		n      int // requests before the one checked
		status int
		want   map[string]string // "" means absent
	}{
		{"token bucket 429", Config{Name: "api", Rate: 2, Burst: 5}, 5, 429, map[string]string{
			"RateLimit-Policy": `"api";q=5;w=3`,
			"RateLimit":        `"api";r=0;t=3`,
			"Retry-After":      "1",
		}},
		{"token bucket allowed", Config{Name: "api", Rate: 2, Burst: 5, Headers: true}, 1, 200, map[string]string{
			"RateLimit-Policy": `"api";q=5;w=3`,
			"RateLimit":        `"api";r=3;t=1`,
			"Retry-After":      "",
		}},
		{"allowed without Headers", Config{Rate: 2, Burst: 5}, 1, 200, map[string]string{
			"RateLimit-Policy": "",
			"RateLimit":        "",
		}},
		{"sliding window 429", Config{Algorithm: SlidingWindow, Limit: 3, Window: time.Minute}, 3, 429, map[string]string{
			"RateLimit-Policy": `"default";q=3;w=60`,
			"RateLimit":        `"default";r=0;t=60`,
			"Retry-After":      "80",
		}},
		{"missing API key", Config{Key: KeyAPIKey, Rate: 2}, 0, 401, map[string]string{
			"RateLimit-Policy": "",
			"Retry-After":      "",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Now = clk.Now
			l := mustNew(t, c.cfg)
			srv := server(t, l)
			for range c.n {
				get(t, srv, "X-API-Key", "k")
			}
			var resp *http.Response
			if c.status == 401 {
				resp = get(t, srv)
			} else {
				resp = get(t, srv, "X-API-Key", "k")
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			for k, want := range c.want {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestConcurrency(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Config{Rate: 1, Burst: 100, MaxKeys: 4, Now: clk.Now})
	const goroutines, each = 8, 500
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed = map[string]int{}
	)
	addrs := []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"}
	for g := range goroutines {
		wg.Go(func() {
			n := map[string]int{}
			for i := range each {
				a := addrs[(g+i)%len(addrs)]
				if l.Allow(request(a)).Allowed {
					n[a]++
				}
			}
			mu.Lock()
			for a, c := range n {
				allowed[a] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, a := range addrs {
		if allowed[a] != 100 {
			t.Errorf("%s: %d allowed, want exactly the burst of 100", a, allowed[a])
		}
	}
	if st := l.Stats(); st.Allowed != 300 || st.Limited != goroutines*each-300 {
		t.Errorf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no rate", Config{}, "rate"},
		{"negative burst", Config{Rate: 1, Burst: -1}, "burst"},
		{"bad algorithm", Config{Algorithm: "leaky", Rate: 1}, "algorithm"},
		{"window without limit", Config{Algorithm: SlidingWindow, Window: time.Second}, "limit"},
		{"limit without window", Config{Algorithm: SlidingWindow, Limit: 1}, "window"},
		{"header key without header", Config{Rate: 1, Key: KeyHeader}, "header"},
		{"bad key", Config{Rate: 1, Key: "cookie"}, "key"},
		{"bad fallback", Config{Rate: 1, Fallback: "allow"}, "fallback"},
		{"bad name", Config{Rate: 1, Name: `a"b`}, "name"},
		{"bad prefix", Config{Rate: 1, IPv6PrefixLen: 129}, "ipv6_prefix_len"},
		{"negative max keys", Config{Rate: 1, MaxKeys: -1}, "max_keys"},
		{"negative TTL", Config{Rate: 1, KeyTTL: -time.Second}, "key_ttl"},
		{"jwt without algorithm", Config{Rate: 1, Key: KeyJWTClaim}, "algorithm"},
		{"jwt short secret", Config{Rate: 1, Key: KeyJWTClaim, JWT: JWTConfig{Algorithm: "HS256", Secret: []byte("short")}}, "secret"},
		{"jwt none", Config{Rate: 1, Key: KeyJWTClaim, JWT: JWTConfig{Algorithm: "none"}}, "algorithm"},
		{"jwt RS256 without key", Config{Rate: 1, Key: KeyJWTClaim, JWT: JWTConfig{Algorithm: "RS256"}}, "public_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want an ErrConfig naming %q", err, c.want)
			}
		})
	}
}

func TestRejectionLogSampled(t *testing.T) {
	var buf testkit.Buffer
	l := mustNew(t, Config{Key: KeyAPIKey, Rate: 1, Burst: 1, LogEvery: 3, Log: textLogger(&buf), Now: newClock().Now})
	const secret = "sk_live_do_not_log_me"
	r := request("192.0.2.1:1", "X-API-Key", secret)
	allowN(l, r, 8) // 1 allowed, 7 refused: logged are the 1st, 4th and 7th
	out := buf.String()
	if n := strings.Count(out, "rate limit rejected request"); n != 3 {
		t.Errorf("%d rejections logged, want 3:\n%s", n, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "do_not_log") {
		t.Errorf("the API key reached the log:\n%s", out)
	}
	if !strings.Contains(out, "key=sha256:") || !strings.Contains(out, "key_kind=api_key") {
		t.Errorf("log lacks the hashed key:\n%s", out)
	}
}

// TestSlidingWindowClockBack checks that a request whose clock reading
// falls in an earlier window (goroutines read the clock before they get
// the key's lock) still counts, in the current window.
func TestSlidingWindowClockBack(t *testing.T) {
	clk := newClock()
	l := mustNew(t, Config{Algorithm: SlidingWindow, Limit: 3, Window: 10 * time.Second, Now: clk.Now})
	r := request("192.0.2.1:1")
	clk.Advance(10 * time.Second)
	if got := allowN(l, r, 2); got != 2 {
		t.Fatalf("%d allowed, want 2", got)
	}
	clk.Advance(-time.Second)
	if got := allowN(l, r, 2); got != 1 {
		t.Errorf("in the earlier window: %d allowed, want the 1 left in the current one", got)
	}
}

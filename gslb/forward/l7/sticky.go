package l7

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
)

// stickyMode is how a pool pins clients to backends (pool.sticky.mode).
type stickyMode uint8

const (
	stickyNone stickyMode = iota
	stickyCookie
	stickySourceIP
	stickyHeader
)

// stickyTokenLen is the bytes of HMAC a cookie carries: 128 bits, which
// no client guesses.
const stickyTokenLen = 16

// sticky is a pool's session affinity. A cookie names its backend by a
// token, the HMAC of the pool's name and the backend's address under the
// configured key: the cookie does not show the address, and a client
// cannot make one for a backend it was never sent to. Source IP and
// header affinity hash the client's address or the header's value over
// the backends with weighted rendezvous hashing, so that a backend going
// away moves only its own clients.
type sticky struct {
	mode    stickyMode
	cookie  string
	maxAge  time.Duration
	header  string
	tokens  map[string]*upstream.Backend // cookie value -> backend
	tokenOf map[*upstream.Backend]string // backend -> cookie value
	hash    upstream.Balancer            // rendezvous over the pool's backends, for source_ip and header
}

// stickyCounts are what a pool's affinity did, for metrics: requests that
// went to the backend they were pinned to, ones that were pinned anew
// (no pin, or an unknown one), and ones moved because their backend
// could not take them.
type stickyCounts struct {
	hits, assigned, moved atomic.Uint64
}

// newSticky builds a pool's affinity; key is the cookie's HMAC key.
func newSticky(sc config.ForwardSticky, pool string, backends []*upstream.Backend, key []byte) *sticky {
	s := &sticky{cookie: sc.Cookie, maxAge: sc.MaxAge.Duration, header: sc.Header}
	switch sc.Mode {
	case "cookie":
		s.mode = stickyCookie
		s.tokens = make(map[string]*upstream.Backend, len(backends))
		s.tokenOf = make(map[*upstream.Backend]string, len(backends))
		for _, b := range backends {
			token := stickyToken(key, pool, b.Addr)
			s.tokens[token] = b
			s.tokenOf[b] = token
		}
	case "source_ip":
		s.mode = stickySourceIP
		s.hash = upstream.NewRendezvous(backends)
	case "header":
		s.mode = stickyHeader
		s.hash = upstream.NewRendezvous(backends)
	default:
		return nil
	}
	return s
}

func stickyToken(key []byte, pool, addr string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(pool))
	m.Write([]byte{0})
	m.Write([]byte(addr))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:stickyTokenLen])
}

// pinned returns the backend r's cookie pins it to in this pool, or nil.
func (s *sticky) pinned(r requestView) *upstream.Backend {
	v, ok := r.cookie(s.cookie)
	if !ok {
		return nil
	}
	return s.tokens[v]
}

// hashKey returns the hash a source_ip or header pool picks by, and
// whether there is one (a request without the header has none, and is
// balanced as usual).
func (s *sticky) hashKey(r requestView, rs *reqState) (uint64, bool) {
	switch s.mode {
	case stickySourceIP:
		ip := rs.client.As16()
		return xxhash.Sum64(ip[:]), true
	case stickyHeader:
		if v := r.header(s.header); v != "" {
			return xxhash.Sum64String(v), true
		}
	}
	return 0, false
}

// cookieFor is the Set-Cookie value that pins the client to b.
func (s *sticky) cookieFor(b *upstream.Backend, secure bool) string {
	c := http.Cookie{Name: s.cookie, Value: s.tokenOf[b], Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode}
	if s.maxAge > 0 {
		c.MaxAge = int(s.maxAge / time.Second)
	}
	return c.String()
}

// stickyCookie counts what a cookie pool's affinity did for a request
// whose answer came from b, and returns the Set-Cookie value that pins
// the client there, or "" when it was pinned there already (or the pool
// does not pin by cookie). https says whether the client's scheme was.
func (rs *reqState) stickyCookie(b *upstream.Backend, https bool) string {
	if b == nil || rs.pool.http.sticky == nil || rs.pool.http.sticky.mode != stickyCookie {
		return ""
	}
	counts := &rs.pool.http.st.sticky
	switch {
	case rs.pin == b:
		counts.hits.Add(1)
		return ""
	case rs.pin != nil:
		counts.moved.Add(1)
	default:
		counts.assigned.Add(1)
	}
	return rs.pool.http.sticky.cookieFor(b, https)
}

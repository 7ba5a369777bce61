package dnsfront

import (
	"encoding/hex"
	"net/netip"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/cookie"
	"github.com/miekg/dns"
)

// cookieQuery is a query's COOKIE option (RFC 7873), parsed.
type cookieQuery struct {
	present bool
	client  [cookie.ClientLen]byte
	server  [cookie.MaxServerLen]byte
	slen    int // server cookie length; 0: the client has none yet
}

// parse reads the option's data. It reports false for a length RFC 7873
// section 5.2.2 answers with FORMERR: under 8, 9 to 15, over 40.
func (c *cookieQuery) parse(b []byte) bool {
	n := len(b)
	if n < cookie.ClientLen || (n > cookie.ClientLen && n < cookie.ClientLen+cookie.MinServerLen) || n > cookie.ClientLen+cookie.MaxServerLen {
		return false
	}
	c.present = true
	copy(c.client[:], b)
	c.slen = copy(c.server[:], b[cookie.ClientLen:])
	return true
}

// cookieReply is the COOKIE option of our reply: the client cookie and a
// fresh server cookie; n is 0 when the reply carries none.
type cookieReply struct {
	n int
	b [cookie.ClientLen + cookie.ServerLen]byte
}

// cookies answers q's cookie: a fresh server cookie for the reply, and
// whether the client brought a valid one (which exempts it from rate
// limiting).
func (h *Handler) cookies(st *State, q *cookieQuery, client netip.Addr, out *cookieReply) (valid bool) {
	*out = cookieReply{}
	jar := st.Cookies
	if jar == nil || !q.present || !client.IsValid() {
		return false
	}
	now := h.unixNow()
	valid = q.slen > 0 && jar.Check(q.client[:], q.server[:q.slen], client, now)
	copy(out.b[:], q.client[:])
	var server [cookie.ServerLen]byte
	jar.Make(&server, q.client[:], client, now)
	copy(out.b[cookie.ClientLen:], server[:])
	out.n = len(out.b)
	return valid
}

// unixNow is the time in Unix seconds from the handler's coarse clock.
func (h *Handler) unixNow() uint32 {
	return uint32(h.born.Unix()) + h.clock.Load()/10
}

// cookieOption is the full path's form of a cookie reply.
func (r *cookieReply) option(o *dns.EDNS0_COOKIE) *dns.EDNS0_COOKIE {
	*o = dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(r.b[:r.n])}
	return o
}

package dnsfront

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
)

// rrlInfo is what response rate limiting keys a response by, noted by the
// answer paths; the zero value is an error response, keyed by the client
// alone.
type rrlInfo struct {
	set   bool
	class rrl.Class
	name  string
}

// classify notes what a static or wildcard result is, for rate limiting:
// the name a bucket is kept for depends on the class, so a flood of
// random names under one zone (NXDOMAIN) or one wildcard shares a bucket.
func classify(res *zones.Result, qname string, z *zones.Zone) rrlInfo {
	switch {
	case res.Rcode != dns.RcodeSuccess && res.Rcode != dns.RcodeNameError:
		return rrlInfo{}
	case res.Kind == zones.KindNXDomain:
		return rrlInfo{set: true, class: rrl.NXDomain, name: z.Origin()}
	case res.Kind == zones.KindReferral && len(res.Ns) > 0:
		return rrlInfo{set: true, class: rrl.Referral, name: res.Ns[0].Header().Name}
	case res.Kind == zones.KindNoData:
		return rrlInfo{set: true, class: rrl.NoData, name: qname}
	case res.Wildcard:
		return rrlInfo{set: true, class: rrl.Wildcard, name: res.WildcardOwner}
	}
	return rrlInfo{set: true, class: rrl.Answer, name: qname}
}

// limit passes a UDP reply through the rate limiter: sent as is, dropped
// (nil) or replaced by an empty truncated reply.
func (h *Handler) limit(st *State, s *scratch, out []byte, client netip.Addr) []byte {
	t := st.RRL
	if t == nil || len(out) < headerLen {
		return out
	}
	qi := &s.info
	class, name := rrl.Error, ""
	if qi.rrl.set {
		class, name = qi.rrl.class, qi.rrl.name
	}
	v := t.Judge(h.clock.Load(), client, class, name, qi.qtype, qi.cookie)
	if v.Action == rrl.Send {
		return out
	}
	h.stats.rrl[class][v.Action].Add(1)
	if v.Log {
		h.log.Info("rate limiting responses", "prefix", t.Prefix(client).String(), "class", class.String(),
			"name", name, "action", v.Action.String())
	}
	if v.Action == rrl.Drop {
		return nil
	}
	return slipReply(out, qi.edns, st.UDPSize)
}

// slipReply cuts out down to its header and question with TC set, and our
// OPT record when the query had one: the client learns to ask again over
// TCP, and the reply is no larger than the query.
func slipReply(out []byte, edns bool, udpSize int) []byte {
	be := binary.BigEndian
	end := headerLen
	if be.Uint16(out[4:]) == 1 {
		for end < len(out) && out[end] != 0 && out[end]&0xC0 == 0 {
			end += 1 + int(out[end])
		}
		end += 1 + 4
		if end > len(out) {
			end = headerLen
		}
	}
	if end == headerLen {
		be.PutUint16(out[4:], 0)
	}
	out = out[:end]
	be.PutUint16(out[2:], be.Uint16(out[2:])|flagTC)
	be.PutUint16(out[6:], 0)
	be.PutUint16(out[8:], 0)
	be.PutUint16(out[10:], 0)
	if edns {
		be.PutUint16(out[10:], 1)
		out = appendOPT(out, udpSize, false, &ecs{}, nil)
	}
	return out
}

// clockTick is how often the rate limiter's clock moves.
const clockTick = 100 * time.Millisecond

// runClock keeps h.clock, the tenths of a second since the handler
// started, until stop is closed: the rate limiter reads it for every UDP
// reply, where reading the system clock would cost more than the answer.
func (h *Handler) runClock(stop <-chan struct{}) {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.clock.Store(uint32(now.Sub(h.born) / clockTick))
		}
	}
}

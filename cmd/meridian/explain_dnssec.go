package main

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// signing is explain's account of how a signed zone's answer is signed.
type signing struct {
	Zone       string           `json:"zone"`
	Keys       []dnssec.KeyInfo `json:"keys"`
	KeyTag     uint16           `json:"signed_by,omitempty"`
	Inception  time.Time        `json:"inception,omitzero"`
	Expiration time.Time        `json:"expiration,omitzero"`
	Error      string           `json:"error,omitempty"`
}

// explainSigning signs the explained answer as a serving node would on
// its first use (a node then serves it from its cache until less than
// refresh is left); nil for an unsigned zone.
func explainSigning(sg *dnssec.Signer, rec *gslb.Record, ex gslb.Explanation) *signing {
	if sg == nil {
		return nil
	}
	out := &signing{Zone: sg.Zone(), Keys: sg.KeyInfos()}
	var rrset []dns.RR
	for _, a := range ex.Answer {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		hdr := dns.RR_Header{Name: rec.Name, Rrtype: rec.Type, Class: dns.ClassINET, Ttl: ex.TTL}
		if rec.Type == dns.TypeA {
			rrset = append(rrset, &dns.A{Hdr: hdr, A: addr.AsSlice()})
		} else {
			rrset = append(rrset, &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()})
		}
	}
	if len(rrset) == 0 {
		return out // NODATA or SERVFAIL: nothing to sign but the denial
	}
	sigs, _, err := sg.Sign(rrset, nil)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	sig := sigs[0].(*dns.RRSIG)
	out.KeyTag = sig.KeyTag
	out.Inception = time.Unix(int64(sig.Inception), 0).UTC()
	out.Expiration = time.Unix(int64(sig.Expiration), 0).UTC()
	return out
}

func printSigning(w io.Writer, s *signing) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "dnssec    zone %s is signed; keys:\n", s.Zone)
	for _, k := range s.Keys {
		fmt.Fprintf(w, "            %d %s %s\n", k.Tag, k.Algorithm, k.State)
	}
	switch {
	case s.Error != "":
		fmt.Fprintf(w, "          signing failed: %s\n", s.Error)
	case s.KeyTag != 0:
		fmt.Fprintf(w, "          the answer is signed by key %d, valid %s to %s, once per distinct answer;\n",
			s.KeyTag, s.Inception.Format(time.RFC3339), s.Expiration.Format(time.RFC3339))
		fmt.Fprintf(w, "          a serving node's cache and soonest expiry: GET /api/v1/zones\n")
	}
}

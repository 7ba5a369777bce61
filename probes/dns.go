package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNSUDPSize is the EDNS0 buffer size a DNS check advertises: the DNS Flag
// Day 2020 value, which avoids IP fragmentation on any usual path.
const DNSUDPSize = 1232

// DNSConfig defines a DNS check: one query to one nameserver.
type DNSConfig struct {
	Addr   string     // nameserver host:port
	Source netip.Addr // local address to query from; zero lets the system choose
	Name   string     // query name; made fully qualified
	Type   uint16     // query type; dns.TypeA when 0
	// Rcode is the rcode that passes; the zero value is NOERROR. NXDOMAIN
	// here checks that a name is absent.
	Rcode int
	// Answer, when set, must equal the rdata of at least one answer record
	// of Type, written as in a zone file without the owner, TTL, class and
	// type: "192.0.2.1", "10 mail.example.". Names compare without regard
	// to case.
	Answer string
	TCP    bool // query over TCP only; otherwise UDP, and TCP when the reply is truncated
}

// DNSChecker sends one non-recursive query and judges the reply by its
// rcode and, if configured, its answer. Make one with NewDNSChecker; it is
// safe for concurrent use.
type DNSChecker struct {
	cfg    DNSConfig // defaults applied, as compared by Equal
	answer dns.RR    // cfg.Answer parsed as a record of cfg.Type; nil when unset
	udp    net.Dialer
	tcp    net.Dialer
}

var (
	_ Checker = (*DNSChecker)(nil)
	_ Equaler = (*DNSChecker)(nil)
)

// NewDNSChecker validates cfg and returns its checker.
func NewDNSChecker(cfg DNSConfig) (*DNSChecker, error) {
	c, err := newDNSChecker(cfg)
	if err != nil {
		return nil, fmt.Errorf("dns check %q: %w", cfg.Addr, err)
	}
	return c, nil
}

func newDNSChecker(cfg DNSConfig) (*DNSChecker, error) {
	if err := checkAddr(cfg.Addr); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: no query name", ErrInvalidCheck)
	}
	if _, ok := dns.IsDomainName(cfg.Name); !ok {
		return nil, fmt.Errorf("%w: query name %q is not a domain name", ErrInvalidCheck, cfg.Name)
	}
	// Case means nothing to a nameserver; one spelling keeps Equal true
	// across a reload that only changed it.
	cfg.Name = dns.CanonicalName(cfg.Name)
	if cfg.Type == 0 {
		cfg.Type = dns.TypeA
	}
	switch cfg.Type {
	case dns.TypeOPT, dns.TypeAXFR, dns.TypeIXFR, dns.TypeTSIG, dns.TypeTKEY:
		return nil, fmt.Errorf("%w: query type %s cannot be checked", ErrInvalidCheck, typeName(cfg.Type))
	}
	if cfg.Rcode < 0 || cfg.Rcode > 0xFFF {
		return nil, fmt.Errorf("%w: rcode %d is out of range", ErrInvalidCheck, cfg.Rcode)
	}
	c := &DNSChecker{cfg: cfg}
	if cfg.Answer = strings.TrimSpace(cfg.Answer); cfg.Answer != "" {
		rr, err := dns.NewRR(". 0 IN " + typeName(cfg.Type) + " " + cfg.Answer)
		if err == nil && rr == nil {
			err = errors.New("no record") // a comment, say
		}
		if err != nil {
			return nil, fmt.Errorf("%w: answer %q is not %s record data: %w", ErrInvalidCheck, cfg.Answer, typeName(cfg.Type), err)
		}
		c.answer = rr
		c.cfg.Answer = cfg.Answer
	}
	// A dialer's source address must be of the network's type, so UDP
	// and TCP have a dialer each.
	if cfg.Source.IsValid() {
		c.udp.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Source, 0))
		c.tcp.LocalAddr = localAddr(cfg.Source)
	}
	return c, nil
}

// Check sends one query: over UDP, and again over TCP when the UDP reply
// is truncated; over TCP alone when so configured. The RTT runs from the
// start to the reply that decides, so it includes a TCP retry.
func (c *DNSChecker) Check(ctx context.Context) Result {
	start := time.Now()
	network := "udp"
	if c.cfg.TCP {
		network = "tcp"
	}
	r, err := c.exchange(ctx, network)
	if err == nil && r.Truncated && network == "udp" {
		network = "tcp"
		r, err = c.exchange(ctx, network)
	}
	rtt := time.Since(start)
	if err != nil {
		reason := noReply(ctx, err)
		if network == "tcp" {
			reason = "tcp: " + reason
		}
		return Result{RTT: rtt, Reason: reason}
	}
	if fault := c.judge(r); fault != "" {
		return Result{RTT: rtt, Reason: fault}
	}
	return Result{OK: true, RTT: rtt, Reason: "rcode " + rcodeName(r.Rcode)}
}

// judge returns what is wrong with a reply to the check's query, or "".
func (c *DNSChecker) judge(r *dns.Msg) string {
	if r.Rcode != c.cfg.Rcode {
		return "rcode " + rcodeName(r.Rcode) + ", want " + rcodeName(c.cfg.Rcode)
	}
	if c.answer == nil {
		return ""
	}
	var got []string
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Rrtype != c.cfg.Type {
			continue // a CNAME on the way to the answer
		}
		// IsDuplicate compares the owner and class too: take the
		// record's, so that only the rdata counts.
		want := dns.Copy(c.answer)
		want.Header().Name, want.Header().Class = h.Name, h.Class
		if dns.IsDuplicate(want, rr) {
			return ""
		}
		got = append(got, rdata(rr))
	}
	return "no answer " + c.cfg.Answer + " (got " + summary(got) + ")"
}

// exchange sends the check's query over network and returns the reply.
func (c *DNSChecker) exchange(ctx context.Context, network string) (*dns.Msg, error) {
	d := &c.udp
	if network == "tcp" {
		d = &c.tcp
	}
	conn, err := d.DialContext(ctx, network, c.cfg.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The deadline bounds the wait for the reply; a cancellation without
	// one ends it by moving the deadline to the past. The miekg/dns
	// client would cap reads at its own 2s default instead.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	q := new(dns.Msg)
	q.SetQuestion(c.cfg.Name, c.cfg.Type)
	q.RecursionDesired = false // the server's own data, not what it can find elsewhere
	q.SetEdns0(DNSUDPSize, false)
	co := &dns.Conn{Conn: conn, UDPSize: DNSUDPSize}
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	for {
		r, err := co.ReadMsg()
		switch {
		case err != nil && r == nil: // nothing read
			return nil, err
		case err != nil && r.Truncated && r.Id == q.Id && network == "udp":
			// A reply cut short in the middle of a record does not
			// unpack, yet says enough to retry over TCP.
			return r, nil
		case err != nil:
			return nil, fmt.Errorf("bad reply: %w", err)
		}
		if r.Id != q.Id {
			if network == "udp" {
				continue // a stray datagram, as the miekg/dns client ignores them
			}
			return nil, fmt.Errorf("bad reply: %w", dns.ErrId)
		}
		if !r.Response || !sameQuestion(r, q.Question[0]) {
			return nil, errors.New("reply to another question")
		}
		return r, nil
	}
}

// sameQuestion reports whether r answers q. Servers may leave the question
// out of an error reply (FORMERR, NOTIMP, REFUSED), which is accepted as
// long as it is one.
func sameQuestion(r *dns.Msg, q dns.Question) bool {
	if len(r.Question) == 0 {
		return r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError
	}
	got := r.Question[0]
	return len(r.Question) == 1 && got.Qtype == q.Qtype && got.Qclass == q.Qclass && strings.EqualFold(got.Name, q.Name)
}

// noReply is the reason a query got no reply: "timeout" alone, since a
// DNS query has no phases to name, or the cause.
func noReply(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled"
	case errors.Is(ctx.Err(), context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	}
	return failReason(ctx, err, "query")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rdata is a record's data as a zone file writes it, without the owner,
// TTL, class and type.
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// summary lists the first few answers; a reason stays one short line.
func summary(got []string) string {
	const most = 3
	switch {
	case len(got) == 0:
		return "none"
	case len(got) > most:
		return strings.Join(got[:most], ", ") + fmt.Sprintf(" and %d more", len(got)-most)
	}
	return strings.Join(got, ", ")
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// Equal reports whether other is a DNS check of the same definition.
func (c *DNSChecker) Equal(other Checker) bool {
	o, ok := other.(*DNSChecker)
	return ok && o.cfg == c.cfg
}

// String names the check in logs: "dns www.example.test. A @192.0.2.53:53".
func (c *DNSChecker) String() string {
	s := "dns " + c.cfg.Name + " " + typeName(c.cfg.Type) + " @" + c.cfg.Addr
	if c.cfg.TCP {
		s += " over tcp"
	}
	return s
}

package checkconfig

import (
	"cmp"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-gslb/meridian/internal/tomlfile"
	"github.com/meridian-gslb/meridian/probes"
)

// Defaults of a check's keys, the same for the DNS node and the forwarder
// but for the port, which each sets itself.
const (
	DefaultInterval  = 5 * time.Second
	DefaultTimeout   = 2 * time.Second
	DefaultRise      = 2
	DefaultFall      = 3
	DefaultMethod    = "GET"     // method of http and https checks
	DefaultDNSPort   = 53        // port of a DNS node's dns checks
	DefaultQueryType = "A"       // query_type
	DefaultRcode     = "NOERROR" // rcode: the rcode that passes
	MinInterval      = 10 * time.Millisecond
)

// Types are the values of type.
var Types = []string{"tcp", "http", "https", "dns", "none"}

// Check is how targets are probed: a [record.pool.check] table of the DNS
// node or a [pool.check] table of the forwarder.
type Check struct {
	Type   string `toml:"type"`   // tcp, http, https, dns, none
	Port   int    `toml:"port"`   // on the target's address; DefaultDNSPort for dns
	Source string `toml:"source"` // IP address the checks are sent from; default the system's choice

	// HTTP and HTTPS.
	Method     string `toml:"method"` // DefaultMethod
	Path       string `toml:"path"`
	Host       string `toml:"host"`
	Expect     []int  `toml:"expect"`      // HTTP status codes counted as up; default 200-399
	Body       string `toml:"body"`        // the response body must contain this
	BodyRegexp string `toml:"body_regexp"` // the response body must match this (RE2)
	// HTTPS: certificates are verified (SNI from host, else server_name);
	// ca_file replaces the system roots for a private CA; cert_file and
	// key_file are a client certificate. Relative to the config file.
	CAFile     string `toml:"ca_file"`
	ServerName string `toml:"server_name"`
	CertFile   string `toml:"cert_file"`
	KeyFile    string `toml:"key_file"`

	// DNS: one non-recursive query to the target, passing on the rcode
	// and, when answer is set, an answer record with that data.
	QueryName string `toml:"query_name"` // required
	QueryType string `toml:"query_type"` // DefaultQueryType
	Rcode     string `toml:"rcode"`      // DefaultRcode
	Answer    string `toml:"answer"`     // rdata as in a zone file: "192.0.2.1", "10 mail.example."

	Interval tomlfile.Duration `toml:"interval"`
	Timeout  tomlfile.Duration `toml:"timeout"`
	Rise     int               `toml:"rise"`
	Fall     int               `toml:"fall"`
}

// SetDefaults gives ck the defaults of an absent key. A GSLB pool's
// [record.pool.check] and a forwarder pool's [pool.check] share them but
// for the port, which each sets itself: a forwarder checks its backend's
// own port unless told otherwise, whatever the type.
func (ck *Check) SetDefaults() {
	ck.Type = strings.ToLower(cmp.Or(ck.Type, "tcp"))
	if ck.Interval.Duration == 0 {
		ck.Interval.Duration = DefaultInterval
	}
	if ck.Timeout.Duration == 0 {
		ck.Timeout.Duration = min(DefaultTimeout, ck.Interval.Duration)
	}
	ck.Rise = cmp.Or(ck.Rise, DefaultRise)
	ck.Fall = cmp.Or(ck.Fall, DefaultFall)
	switch ck.Type {
	case "http", "https":
		ck.Method = strings.ToUpper(cmp.Or(ck.Method, DefaultMethod))
		ck.Path = cmp.Or(ck.Path, "/")
	case "dns":
		ck.QueryType = strings.ToUpper(cmp.Or(ck.QueryType, DefaultQueryType))
		ck.Rcode = strings.ToUpper(cmp.Or(ck.Rcode, DefaultRcode))
	}
}

func (ck Check) validate(v *problems) {
	if !slices.Contains(Types, ck.Type) {
		v.fail("type", "must be one of %s, got %q", strings.Join(Types, ", "), ck.Type)
	}
	if ck.Interval.Duration < MinInterval {
		v.fail("interval", "must be at least %s, got %s", MinInterval, ck.Interval)
	}
	if ck.Timeout.Duration <= 0 || ck.Timeout.Duration > ck.Interval.Duration {
		v.fail("timeout", "must be positive and at most the interval (%s), got %s", ck.Interval, ck.Timeout)
	}
	if ck.Rise < 1 || ck.Fall < 1 {
		v.fail("", "rise and fall must be at least 1")
	}
	for _, code := range ck.Expect {
		if code < 100 || code > 599 {
			v.fail("expect", "%d is not an HTTP status code", code)
		}
	}
	if ck.Source != "" {
		if _, err := netip.ParseAddr(ck.Source); err != nil {
			v.fail("source", "%q is not an IP address", ck.Source)
		}
	}
	ck.validateTypeKeys(v)
	if ck.Type == "http" || ck.Type == "https" {
		if !methodRe.MatchString(ck.Method) {
			v.fail("method", "%q is not an HTTP method", ck.Method)
		}
		if _, err := regexp.Compile(ck.BodyRegexp); err != nil {
			v.fail("body_regexp", "not a regular expression (RE2 syntax): %v", err)
		}
	}
	if ck.Type == "https" && (ck.CertFile == "") != (ck.KeyFile == "") {
		missing := "cert_file"
		if ck.KeyFile == "" {
			missing = "key_file"
		}
		v.fail(missing, "missing: a client certificate needs both cert_file and key_file")
	}
	if ck.Type == "dns" {
		ck.validateDNSCheck(v)
	}
}

// validateTypeKeys reports the keys of one type of check written in a
// check of another: the operator meant something the check will not do.
func (ck Check) validateTypeKeys(v *problems) {
	web := ck.Type == "http" || ck.Type == "https"
	for _, k := range []struct {
		name string
		set  bool
		ok   bool
		what string
	}{
		{"method", ck.Method != "", web, `type = "http" or "https"`},
		{"body_regexp", ck.BodyRegexp != "", web, `type = "http" or "https"`},
		{"cert_file", ck.CertFile != "", ck.Type == "https", `type = "https"`},
		{"key_file", ck.KeyFile != "", ck.Type == "https", `type = "https"`},
		{"query_name", ck.QueryName != "", ck.Type == "dns", `type = "dns"`},
		{"query_type", ck.QueryType != "", ck.Type == "dns", `type = "dns"`},
		{"rcode", ck.Rcode != "", ck.Type == "dns", `type = "dns"`},
		{"answer", ck.Answer != "", ck.Type == "dns", `type = "dns"`},
		{"source", ck.Source != "", ck.Type != "none", "checks that run"},
	} {
		if k.set && !k.ok && slices.Contains(Types, ck.Type) {
			v.fail(k.name, "is only for %s, and this check is type = %q", k.what, ck.Type)
		}
	}
}

// methodRe is an HTTP method: a token (RFC 9110 section 9.1).
var methodRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (ck Check) validateDNSCheck(v *problems) {
	switch _, ok := dns.IsDomainName(ck.QueryName); {
	case ck.QueryName == "":
		v.fail("query_name", "missing: a dns check needs the name to query")
	case !ok:
		v.fail("query_name", "%q is not a domain name", ck.QueryName)
	}
	qtype, typeOK := dns.StringToType[ck.QueryType]
	switch {
	case !typeOK:
		v.fail("query_type", "%q is not a DNS record type", ck.QueryType)
	case slices.Contains(unqueryableTypes, qtype):
		v.fail("query_type", "%s cannot be checked with one query", ck.QueryType)
		typeOK = false
	}
	if _, ok := dns.StringToRcode[ck.Rcode]; !ok {
		v.fail("rcode", "%q is not an rcode (NOERROR, NXDOMAIN, SERVFAIL, REFUSED...)", ck.Rcode)
	}
	if ck.Answer != "" && typeOK {
		if rr, err := dns.NewRR(". 0 IN " + ck.QueryType + " " + ck.Answer); err != nil || rr == nil {
			v.fail("answer", "%q is not the data of a %s record", ck.Answer, ck.QueryType)
		}
	}
}

// unqueryableTypes are the types a one-query check cannot ask for.
var unqueryableTypes = []uint16{dns.TypeOPT, dns.TypeAXFR, dns.TypeIXFR, dns.TypeTSIG, dns.TypeTKEY}

// Validate checks a defaulted ck; each problem's key is relative to the
// check's table ("interval", or "" for the table itself).
func (ck Check) Validate() []tomlfile.Problem {
	var v problems
	ck.validate(&v)
	return v
}

// problems collects what Validate finds.
type problems []tomlfile.Problem

func (v *problems) fail(key, format string, args ...any) {
	*v = append(*v, tomlfile.Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Spec is ck's spec, with its files resolved by resolve (against the
// folder of the configuration file). The caller fills in Target and Addr.
func (ck Check) Spec(resolve func(string) string) probes.CheckSpec {
	s := probes.CheckSpec{
		Type:   ck.Type,
		Method: ck.Method, Path: ck.Path, Host: ck.Host, Expect: ck.Expect,
		Body: ck.Body, BodyRegexp: ck.BodyRegexp,
		CAFile: resolve(ck.CAFile), ServerName: ck.ServerName,
		CertFile: resolve(ck.CertFile), KeyFile: resolve(ck.KeyFile),
		Interval: ck.Interval.Duration, Timeout: ck.Timeout.Duration, Rise: ck.Rise, Fall: ck.Fall,
	}
	if ck.Source != "" {
		s.Source = netip.MustParseAddr(ck.Source) // validated
	}
	if ck.Type == "dns" {
		s.QueryName = dns.Fqdn(ck.QueryName)
		s.QueryType = dns.StringToType[ck.QueryType]
		s.Rcode = dns.StringToRcode[ck.Rcode]
		s.Answer = ck.Answer
	}
	return s
}

package probes

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// CheckSpec is one health check to run, for the target whose ID it
// carries: what the DNS node's configuration asks for, and what its check
// plan sends to the probe agents (EncodePlan).
//
// The JSON names are the field names in lower camel case: a decoder
// matches names without regard to case, so plans written before the
// fields had tags (with the Go names) and plans written now read the same
// on either side. Durations are integer nanoseconds.
type CheckSpec struct {
	Target health.TargetID `json:"target"`
	Type   string          `json:"type"`            // tcp, http, https, dns
	Addr   string          `json:"addr"`            // host:port probed
	Source netip.Addr      `json:"source,omitzero"` // address the check is sent from; zero lets the system choose

	// HTTP and HTTPS.
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	Host       string `json:"host,omitempty"`
	Expect     []int  `json:"expect,omitempty"`
	Body       string `json:"body,omitempty"`
	BodyRegexp string `json:"bodyRegexp,omitempty"`
	CAFile     string `json:"caFile,omitempty"` // paths resolved against the config file's folder
	ServerName string `json:"serverName,omitempty"`
	CertFile   string `json:"certFile,omitempty"`
	KeyFile    string `json:"keyFile,omitempty"`
	// CAPEM, CertPEM and KeyPEM carry the contents of the files, for a
	// check run on another host; each replaces its file when set. The
	// configuration leaves them empty.
	CAPEM   []byte `json:"caPem,omitempty"`
	CertPEM []byte `json:"certPem,omitempty"`
	KeyPEM  []byte `json:"keyPem,omitempty"`

	// DNS.
	QueryName string `json:"queryName,omitempty"` // fully qualified
	QueryType uint16 `json:"queryType,omitempty"`
	Rcode     int    `json:"rcode,omitempty"`
	Answer    string `json:"answer,omitempty"`

	Interval time.Duration `json:"interval,omitempty"` // DefaultInterval when 0
	Timeout  time.Duration `json:"timeout,omitempty"`  // DefaultTimeout (at most Interval) when 0
	Rise     int           `json:"rise,omitempty"`     // DefaultRise when 0
	Fall     int           `json:"fall,omitempty"`     // DefaultFall when 0
}

// NewChecker builds the probe of one check. PEM contents, set when the
// check was defined on another host, take the place of the file paths.
func NewChecker(s CheckSpec) (Checker, error) {
	switch s.Type {
	case "tcp":
		return NewTCPChecker(TCPConfig{Addr: s.Addr, Source: s.Source})
	case "http", "https":
		cfg := HTTPConfig{
			Addr: s.Addr, TLS: s.Type == "https", Source: s.Source,
			Method: s.Method, Path: s.Path, Host: s.Host, Status: s.Expect,
			BodyContains: s.Body, BodyRegexp: s.BodyRegexp,
			ServerName: s.ServerName, CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile,
		}
		if len(s.CAPEM) > 0 {
			cfg.CAFile, cfg.CAPEM = "", s.CAPEM
		}
		if len(s.CertPEM) > 0 {
			cfg.CertFile, cfg.CertPEM = "", s.CertPEM
		}
		if len(s.KeyPEM) > 0 {
			cfg.KeyFile, cfg.KeyPEM = "", s.KeyPEM
		}
		return NewHTTPChecker(cfg)
	case "dns":
		return NewDNSChecker(DNSConfig{
			Addr: s.Addr, Source: s.Source,
			Name: s.QueryName, Type: s.QueryType, Rcode: s.Rcode, Answer: s.Answer,
		})
	}
	return nil, fmt.Errorf("unknown check type %q", s.Type)
}

package probes

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
)

// planVersion is the version of a plan's JSON. A probe agent refuses a
// plan of a version it does not know, and keeps the checks it has.
const planVersion = 1

type planBody struct {
	Version int         `json:"version"`
	Checks  []CheckSpec `json:"checks"`
}

// EncodePlan writes the checks a DNS node asks probe agents on other hosts
// to run: the contents of CA, certificate and key files travel in place
// of their paths, which mean nothing there, and no source address (a
// vantage sends from its own).
func EncodePlan(specs []CheckSpec) ([]byte, error) {
	out := make([]CheckSpec, len(specs))
	for i, s := range specs {
		for _, f := range []struct {
			path string
			dst  *[]byte
		}{{s.CAFile, &s.CAPEM}, {s.CertFile, &s.CertPEM}, {s.KeyFile, &s.KeyPEM}} {
			if f.path == "" || len(*f.dst) > 0 {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return nil, fmt.Errorf("check of %s: %w", s.Target, err)
			}
			*f.dst = b
		}
		s.CAFile, s.CertFile, s.KeyFile = "", "", ""
		s.Source = netip.Addr{}
		out[i] = s
	}
	return json.Marshal(planBody{Version: planVersion, Checks: out})
}

// DecodePlan reads a plan written by EncodePlan.
func DecodePlan(b []byte) ([]CheckSpec, error) {
	var p planBody
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("check plan: %w", err)
	}
	if p.Version != planVersion {
		return nil, fmt.Errorf("check plan version %d; this agent reads version %d", p.Version, planVersion)
	}
	return p.Checks, nil
}

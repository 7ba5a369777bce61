package whatif

import (
	"bufio"
	"fmt"
	"io"
	"iter"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
)

// Client is one client of a simulation: a label for the report, the
// engine's client, and its weight in the shares (queries, or 1).
type Client struct {
	Label  string       // "" for a subnet's client: the subnet, written only when the report lists it
	Subnet netip.Prefix // the client's subnet, when it has one
	Client gslb.Client
	Weight float64
}

// Name is the client as the report and the query counts name it.
func (c *Client) Name() string {
	if c.Label == "" {
		return c.Subnet.String()
	}
	return c.Label
}

// Clients is a stream of clients; Simulate reads it once, so a table of
// a million rows is never held twice.
type Clients struct {
	Source string // what they are, for the report: "geo.network rows", "countries", a file's name
	Seq    iter.Seq[Client]
	// Size is how many Seq yields, when known before the walk (0: unknown).
	Size int
}

// TableRows are the CIDR rows of the index's tables, each a client as a
// query with the row's prefix as its Client Subnet is located.
func TableRows(idx *geo.Index) Clients {
	return Clients{Source: "geo.network rows", Seq: func(yield func(Client) bool) {
		for pfx, loc := range idx.Rows() {
			if !yield(Client{Subnet: pfx, Client: gslb.ClientAt(pfx, loc, true), Weight: 1}) {
				return
			}
		}
	}}
}

// Countries are the countries the index's databases know, one client
// each, located at the country (no coordinates: the order is the
// country's, and regions in no list follow in configured order).
func Countries(idx *geo.Index) (Clients, error) {
	locs, err := idx.Countries()
	if err != nil {
		return Clients{}, fmt.Errorf("listing the geo databases' countries: %w", err)
	}
	return Clients{Source: "countries of the geo databases", Size: len(locs), Seq: func(yield func(Client) bool) {
		for _, loc := range locs {
			label := loc.Country
			if loc.Continent != "" {
				label += " (" + loc.Continent + ")"
			}
			if !yield(Client{Label: label, Client: gslb.ClientAt(netip.Prefix{}, loc, true), Weight: 1}) {
				return
			}
		}
	}}, nil
}

// Anyone is one unlocated client: what a record answers when nothing
// knows where clients are.
func Anyone() Clients {
	return Clients{Source: "any client (no geo source)", Size: 1, Seq: func(yield func(Client) bool) {
		yield(Client{Label: "any client", Weight: 1})
	}}
}

// ReadClients reads a clients file: one client a line, an IP address or
// a CIDR prefix, optionally followed by its query count (the weight in
// the shares; 1 when absent); blank lines and # comments are skipped.
// Each is located through idx (nil: unlocated).
func ReadClients(r io.Reader, name string, idx *geo.Index) (Clients, error) {
	var out []Client
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return Clients{}, fmt.Errorf("%s:%d: want CLIENT [QUERIES], got %q", name, line, text)
		}
		p, err := parseClient(fields[0])
		if err != nil {
			return Clients{}, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		weight := 1.0
		if len(fields) == 2 {
			if weight, err = strconv.ParseFloat(fields[1], 64); err != nil || weight < 0 {
				return Clients{}, fmt.Errorf("%s:%d: query count %q is not a number of 0 or more", name, line, fields[1])
			}
		}
		loc, ok := idx.Locate(p.Addr())
		out = append(out, Client{Subnet: p, Client: gslb.ClientAt(p, loc, ok), Weight: weight})
	}
	if err := sc.Err(); err != nil {
		return Clients{}, fmt.Errorf("reading %s: %w", name, err)
	}
	return Clients{Source: name, Size: len(out), Seq: func(yield func(Client) bool) {
		for _, c := range out {
			if !yield(c) {
				return
			}
		}
	}}, nil
}

func parseClient(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("client %q: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("client %q: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Weighted applies query counts by label (a row's prefix, a country's
// code, a file's client) to cs: clients the counts do not name weigh 0.
func Weighted(cs Clients, counts map[string]float64) Clients {
	seq := cs.Seq
	cs.Seq = func(yield func(Client) bool) {
		for c := range seq {
			key, _, _ := strings.Cut(c.Name(), " ")
			c.Weight = counts[key]
			if !yield(c) {
				return
			}
		}
	}
	return cs
}

// ReadCounts reads a query-count file: "LABEL COUNT" a line, LABEL a
// prefix, an address or a country code as the report labels clients.
func ReadCounts(r io.Reader, name string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want LABEL COUNT, got %q", name, line, text)
		}
		n, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s:%d: count %q is not a number of 0 or more", name, line, fields[1])
		}
		key := fields[0]
		if p, err := parseClient(key); err == nil {
			key = p.String()
		}
		out[key] += n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// DefaultClients are the clients a simulation decides when none are
// given: the CIDR rows, then the databases' countries; one unlocated
// client when there is neither.
func DefaultClients(idx *geo.Index) (Clients, error) {
	countries, err := Countries(idx)
	if err != nil {
		return Clients{}, err
	}
	rows := TableRows(idx)
	hasRows := false
	for range idx.Rows() {
		hasRows = true
		break
	}
	switch {
	case !hasRows && countries.Size == 0:
		return Anyone(), nil
	case !hasRows:
		return countries, nil
	case countries.Size == 0:
		return rows, nil
	}
	return Clients{Source: rows.Source + " and " + countries.Source, Seq: func(yield func(Client) bool) {
		for c := range rows.Seq {
			if !yield(c) {
				return
			}
		}
		for c := range countries.Seq {
			if !yield(c) {
				return
			}
		}
	}}, nil
}

package zones

import (
	"fmt"
	"slices"
)

// Set is the collection of zones a server is authoritative for, immutable
// once built.
type Set struct {
	zones map[string]*Zone
	order []*Zone
}

// NewSet builds a set from zones; two zones with one origin are an error.
func NewSet(zs ...*Zone) (*Set, error) {
	s := &Set{zones: make(map[string]*Zone, len(zs))}
	for _, z := range zs {
		if _, dup := s.zones[z.origin]; dup {
			return nil, fmt.Errorf("zone %s is defined twice", z.origin)
		}
		s.zones[z.origin] = z
		s.order = append(s.order, z)
	}
	slices.SortFunc(s.order, func(a, b *Zone) int {
		switch {
		case a.origin < b.origin:
			return -1
		case a.origin > b.origin:
			return 1
		}
		return 0
	})
	return s, nil
}

// Find returns the zone with the longest origin that contains qname (lower
// case, fully qualified), or nil when no served zone does.
func (s *Set) Find(qname string) *Zone {
	if s == nil || len(s.zones) == 0 {
		return nil
	}
	for name, ok := qname, true; ok; name, ok = parent(name) {
		if z := s.zones[name]; z != nil {
			return z
		}
	}
	return nil
}

// Zones returns the zones in origin order.
func (s *Set) Zones() []*Zone {
	if s == nil {
		return nil
	}
	return s.order
}

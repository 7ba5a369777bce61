package cluster

import (
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// memberSet is the live members as this node's event handlers last saw
// them, each a copy. The nodes memberlist.Members returns are its own
// state, rewritten in place (address, metadata) when an alive message
// arrives, so reading them races with its packet handler; the event
// handlers, called under memberlist's lock, are the one safe place to
// read them. Nothing else is called with mu held.
type memberSet struct {
	mu    sync.Mutex
	nodes map[string]*memberlist.Node
}

// put records m, alive, as it is now.
func (s *memberSet) put(m *memberlist.Node) {
	c := *m
	c.Addr = slices.Clone(m.Addr)
	c.Meta = slices.Clone(m.Meta)
	s.mu.Lock()
	s.nodes[c.Name] = &c
	s.mu.Unlock()
}

// drop forgets a member that is dead or left.
func (s *memberSet) drop(name string) {
	s.mu.Lock()
	delete(s.nodes, name)
	s.mu.Unlock()
}

// list returns the live members, by name. The nodes are never changed
// once recorded: callers may keep them and send to them.
func (s *memberSet) list() []*memberlist.Node {
	s.mu.Lock()
	out := make([]*memberlist.Node, 0, len(s.nodes))
	for _, m := range s.nodes {
		out = append(out, m)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *memberlist.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// get returns the member recorded by that name, or nil.
func (s *memberSet) get(name string) *memberlist.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes[name]
}

package geo

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
)

// A cover splits one address family into consecutive ranges, each with
// the id of what it maps to (-1: nothing). Range i runs from starts[i] up to
// starts[i+1]-1, the last one to the family's last address; starts[0] is
// always 0, so every address is in exactly one range. This is the shape
// gdnsd's merged map trees have, flattened into two arrays: a lookup is a
// binary search, the ECS scope of an address is computed from its range's
// ends, and adjacent ranges never share an id, so each range is as wide as
// the data allows.

// u128 is an address as a number, so ranges of either family can be
// compared and stepped through; an IPv4 address is its 32 bits in lo.
type u128 struct{ hi, lo uint64 }

func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var k u128
	for i := 0; i < 8; i++ {
		k.hi = k.hi<<8 | uint64(b[i])
		k.lo = k.lo<<8 | uint64(b[8+i])
	}
	return k
}

func (k u128) less(o u128) bool { return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo) }

func (k u128) add1() u128 {
	lo := k.lo + 1
	if lo == 0 {
		return u128{k.hi + 1, 0}
	}
	return u128{k.hi, lo}
}

func (k u128) sub1() u128 {
	if k.lo == 0 {
		return u128{k.hi - 1, ^uint64(0)}
	}
	return u128{k.hi, k.lo - 1}
}

func (k u128) xor(o u128) u128 { return u128{k.hi ^ o.hi, k.lo ^ o.lo} }

// clz counts the leading zero bits of k in a width-bit number.
func (k u128) clz(width int) int {
	if width == 32 {
		return bits.LeadingZeros32(uint32(k.lo))
	}
	if k.hi != 0 {
		return bits.LeadingZeros64(k.hi)
	}
	return 64 + bits.LeadingZeros64(k.lo)
}

// lastKey is the highest address of a width-bit family.
func lastKey(width int) u128 {
	if width == 32 {
		return u128{lo: 1<<32 - 1}
	}
	return u128{^uint64(0), ^uint64(0)}
}

// prefixRange returns the first and last address of p.
func prefixRange(p netip.Prefix) (first, last u128, width int) {
	p = p.Masked()
	width = p.Addr().BitLen()
	first = keyOf(p.Addr())
	host := width - p.Bits() // bits that vary inside p
	switch {
	case host == 0:
		last = first
	case host >= 128:
		last = lastKey(128)
	case host >= 64:
		last = u128{first.hi | (1<<(host-64) - 1), ^uint64(0)}
	default:
		last = u128{first.hi, first.lo | (1<<host - 1)}
	}
	return first, last, width
}

// addrOf turns a key back into an address of the family.
func addrOf(k u128, width int) netip.Addr {
	if width == 32 {
		return netip.AddrFrom4([4]byte{byte(k.lo >> 24), byte(k.lo >> 16), byte(k.lo >> 8), byte(k.lo)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(k.hi >> (56 - 8*i))
		b[8+i] = byte(k.lo >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

// scopeBits is the length of the shortest prefix of a that lies inside
// the range [first, next-1] containing it (next: the start of the range
// after it; hasNext false when the range runs to the family's end). Every
// address of that prefix is in the range, and no shorter prefix of a is.
func scopeBits(a, first, next u128, hasNext bool, width int) int {
	b := 0
	if first != (u128{}) {
		// The prefix must not reach below first: it must keep the first
		// bit where a differs from first-1.
		b = a.xor(first.sub1()).clz(width) + 1
	}
	if hasNext {
		b = max(b, a.xor(next).clz(width)+1)
	}
	return b
}

// cover4 and cover6 are the stored covers of each family: IPv4 starts fit
// in 32 bits, which halves the memory of the family with most ranges.
type cover4 struct {
	starts []uint32
	ids    []int32
}

type cover6 struct {
	starts []u128
	ids    []int32
}

// find returns the index of the range holding a.
func (c *cover6) find(a u128) int {
	lo, hi := 0, len(c.starts)
	for lo < hi { // first start > a
		m := int(uint(lo+hi) >> 1)
		if a.less(c.starts[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// coverBuilder collects ranges in ascending order into covers, filling
// gaps with -1 and merging neighbours with the same id.
type coverBuilder struct {
	v4 cover4
	v6 cover6
	// next address not yet covered in each family, and whether the
	// family is covered to its end.
	next4, next6 u128
	full4, full6 bool
}

// add covers [first, last] of a width-bit family with id. Ranges of a
// family must come in ascending order and not overlap.
func (b *coverBuilder) add(first, last u128, width int, id int32) error {
	next, full := &b.next6, &b.full6
	if width == 32 {
		next, full = &b.next4, &b.full4
	}
	if *full || first.less(*next) {
		return fmt.Errorf("%s overlaps or precedes the previous network", addrOf(first, width))
	}
	if *next != first {
		b.push(*next, width, -1)
	}
	b.push(first, width, id)
	if last == lastKey(width) {
		*full = true
	} else {
		*next = last.add1()
	}
	return nil
}

func (b *coverBuilder) push(start u128, width int, id int32) {
	if width == 32 {
		c := &b.v4
		if n := len(c.ids); n > 0 && c.ids[n-1] == id {
			return
		}
		c.starts, c.ids = append(c.starts, uint32(start.lo)), append(c.ids, id)
		return
	}
	c := &b.v6
	if n := len(c.ids); n > 0 && c.ids[n-1] == id {
		return
	}
	c.starts, c.ids = append(c.starts, start), append(c.ids, id)
}

// finish closes both families and returns their covers, trimmed.
func (b *coverBuilder) finish() (cover4, cover6) {
	if !b.full4 {
		b.push(b.next4, 32, -1)
	}
	if !b.full6 {
		b.push(b.next6, 128, -1)
	}
	v4 := cover4{slices.Clip(b.v4.starts), slices.Clip(b.v4.ids)}
	v6 := cover6{slices.Clip(b.v6.starts), slices.Clip(b.v6.ids)}
	return v4, v6
}

// ranges is what a source knows, as covers over a shared location list.
type ranges struct {
	v4   cover4
	v6   cover6
	locs []Location // by id; Network unset
}

// nested is one prefix of a set that may nest (a CIDR table's rows).
type nested struct {
	first, last u128
	width       int
	id          int32
}

// flatten turns nested prefixes into covers where each address maps to
// its longest matching prefix: a sweep in address order with a stack of
// the prefixes open at the current address (prefixes either nest or are
// disjoint, so the stack's top is always the longest match).
func flatten(items []nested) (cover4, cover6) {
	slices.SortFunc(items, func(a, b nested) int {
		switch {
		case a.width != b.width:
			return a.width - b.width
		case a.first != b.first:
			if a.first.less(b.first) {
				return -1
			}
			return 1
		case a.last == b.last:
			return 0
		case b.last.less(a.last): // the wider prefix opens first
			return -1
		}
		return 1
	})
	var b coverBuilder
	for _, width := range []int{32, 128} {
		var stack []nested
		var cur u128 // first address not yet covered; prefixes nest, so cur never passes the top's end + 1
		done := false
		pop := func() { // cover the rest of the top of the stack
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if done || top.last.less(cur) { // covered by what nested in it
				return
			}
			_ = b.add(cur, top.last, width, top.id) // ascending by construction
			if top.last == lastKey(width) {
				done = true
			} else {
				cur = top.last.add1()
			}
		}
		for _, it := range items {
			if it.width != width {
				continue
			}
			for len(stack) > 0 && stack[len(stack)-1].last.less(it.first) {
				pop()
			}
			if n := len(stack); n > 0 && cur.less(it.first) {
				_ = b.add(cur, it.first.sub1(), width, stack[n-1].id)
			}
			cur = it.first // an empty stack leaves a gap, which add fills with -1
			stack = append(stack, it)
		}
		for len(stack) > 0 {
			pop()
		}
	}
	return b.finish()
}

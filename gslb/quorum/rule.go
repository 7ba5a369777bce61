package quorum

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrBadRule is returned for a quorum that is not a count, a fraction or
// "majority".
var ErrBadRule = errors.New("quorum must be \"majority\", a count such as 3, or a share such as 60% or 0.6")

// Rule is how many of the voting vantages must see a target down to take
// it out of the answers: a count, a fraction, or (the zero Rule) a
// majority.
type Rule struct {
	Count    int     // at least this many (capped at the number voting)
	Fraction float64 // at least this share, rounded up; used when Count is 0
}

// ParseRule reads "majority", a count ("3") or a share ("60%", "0.6").
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || strings.EqualFold(s, "majority"):
		return Rule{}, nil
	case strings.HasSuffix(s, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || f <= 0 || f > 100 {
			return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
		}
		return Rule{Fraction: f / 100}, nil
	case strings.Contains(s, "."):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
		}
		return Rule{Fraction: f}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Rule{}, fmt.Errorf("%q: %w", s, ErrBadRule)
	}
	return Rule{Count: n}, nil
}

// Need is how many of n voting vantages must see a target down. It is at
// least 1 and at most n, so that a cluster that lost vantages can still
// take a dead target out.
func (r Rule) Need(n int) int {
	need := n/2 + 1 // a majority: a tie keeps the target up
	switch {
	case r.Count > 0:
		need = r.Count
	case r.Fraction > 0:
		need = int(math.Ceil(r.Fraction*float64(n) - 1e-9))
	}
	return max(1, min(need, n))
}

func (r Rule) String() string {
	switch {
	case r.Count > 0:
		return strconv.Itoa(r.Count)
	case r.Fraction > 0:
		return strconv.FormatFloat(r.Fraction*100, 'f', -1, 64) + "%"
	}
	return "majority"
}

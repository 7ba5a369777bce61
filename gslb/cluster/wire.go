package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// wireVersion is the first byte of every message. A node drops messages
// of another version (and logs them), so a rolling upgrade that changes
// the format must first teach every node to read both.
const wireVersion = 1

// Message kinds, the second byte.
const (
	kindResults   byte = 1 // a vantage's results, as agents before kindReports sent them: read, no longer sent
	kindPlan      byte = 2 // a DNS node's check plan
	kindOverrides byte = 3 // the operators' overrides, last writer wins
	kindFull      byte = 4 // everything a node knows, for push/pull: length-prefixed messages of the kinds above
	// kindReports is kindResults with the vantage's run, whether the
	// batch is its whole view, and what backs each state. A node that
	// predates it drops it as an unknown kind: upgrade the DNS nodes
	// before the agents.
	kindReports byte = 5
	kindBye     byte = 6 // a member leaving on purpose, sent just before memberlist's leave
)

// completeFlag marks the last message of a vantage's whole view.
const completeFlag = 1

// maxPacket bounds a results message sent as one UDP packet: memberlist's
// UDPBufferSize (1400) less its own framing and the encryption overhead.
const maxPacket = 1200

var errMalformed = errors.New("malformed message")

// Report is one vantage's result for one target, as it travels.
type Report struct {
	Target health.TargetID
	State  health.State
	Seq    uint64
	RTT    time.Duration
	// Delay is how long before sending the result was last known current:
	// the receiver sets Seen to its own clock less Delay, so that the
	// clocks of different hosts never meet.
	Delay  time.Duration
	Reason string
	// Backed is how long before sending the observation that backs State
	// was made, and Window how long State may stand without one: the
	// receiver stops counting a state carried longer (quorum.Result).
	Backed time.Duration
	Window time.Duration
	Streak int // consecutive observations that agree with State
}

// Results is a batch of one vantage's reports.
type Results struct {
	Vantage string
	// Boot names the vantage's run (its start time in ns): a restarted
	// vantage starts over at the DNS nodes.
	Boot uint64
	// Complete says Reports is the vantage's whole view: every target it
	// checks has a result. Only then can the DNS nodes judge it.
	Complete bool
	Reports  []Report
}

// Plan is what a DNS node asks vantages to check; its Body is the JSON of
// the checks, which only the probe agent reads.
type Plan struct {
	Origin     string // the DNS node's name
	Generation uint64 // higher replaces lower from the same origin: its load time in ns
	Body       []byte
}

// Overrides is the operators' steering state; Body is the admin API's
// JSON. The whole document is versioned and the last writer wins, as
// every change goes through one node's admin API at a time.
type Overrides struct {
	Version uint64 // the time of the change in ns
	Origin  string // breaks ties between equal versions
	Body    []byte
}

// newer reports whether o replaces old.
func (o Overrides) newer(old Overrides) bool {
	return o.Version > old.Version || o.Version == old.Version && o.Origin > old.Origin
}

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) bytes(p []byte)   { w.uvarint(uint64(len(p))); w.b = append(w.b, p...) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errMalformed
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) str() string { return string(r.bytes()) }

func header(kind byte) *writer { return &writer{b: []byte{wireVersion, kind}} }

// encodeResults encodes rs as messages of at most limit bytes each (one
// report may exceed it alone; 0 means no limit). Only the last carries
// Complete, so that a vantage is judged on all of them.
func encodeResults(rs Results, limit int) [][]byte {
	var out [][]byte
	var body writer
	count := 0
	flush := func(last bool) {
		if count == 0 {
			return
		}
		w := header(kindReports)
		w.str(rs.Vantage)
		w.uvarint(rs.Boot)
		flags := byte(0)
		if last && rs.Complete {
			flags |= completeFlag
		}
		w.b = append(w.b, flags)
		w.uvarint(uint64(count))
		w.b = append(w.b, body.b...)
		out = append(out, w.b)
		body.b, count = nil, 0
	}
	var one writer
	for _, r := range rs.Reports {
		one.b = one.b[:0]
		encodeReport(&one, r)
		if limit > 0 && count > 0 && 2+len(rs.Vantage)+23+len(body.b)+len(one.b) > limit {
			flush(false)
		}
		body.b = append(body.b, one.b...)
		count++
	}
	flush(true)
	return out
}

func encodeReport(w *writer, r Report) {
	w.str(string(r.Target))
	w.b = append(w.b, byte(r.State))
	w.uvarint(r.Seq)
	w.uvarint(uint64(max(r.RTT, 0) / time.Microsecond))
	w.uvarint(uint64(max(r.Delay, 0) / time.Millisecond))
	w.uvarint(uint64(max(r.Backed, 0) / time.Millisecond))
	w.uvarint(uint64(max(r.Window, 0) / time.Millisecond))
	w.uvarint(uint64(max(r.Streak, 0)))
	w.str(r.Reason)
}

// decodeResults reads a kindReports message, or with legacy a
// kindResults one: a whole view, of no known run, its states unbounded.
func decodeResults(r *reader, legacy bool) (Results, error) {
	rs := Results{Vantage: r.str(), Complete: legacy}
	if !legacy {
		rs.Boot = r.uvarint()
		if len(r.b) < 1 {
			return rs, errMalformed
		}
		rs.Complete, r.b = r.b[0]&completeFlag != 0, r.b[1:]
	}
	n := r.uvarint()
	if n > uint64(len(r.b)) { // every report takes bytes: a bound before allocating
		return rs, errMalformed
	}
	rs.Reports = make([]Report, 0, n)
	for range n {
		rep, err := decodeReport(r, legacy)
		if err != nil {
			return rs, err
		}
		rs.Reports = append(rs.Reports, rep)
	}
	return rs, r.err
}

func decodeReport(r *reader, legacy bool) (Report, error) {
	rep := Report{Target: health.TargetID(r.str())}
	if len(r.b) < 1 {
		return rep, errMalformed
	}
	rep.State, r.b = health.State(r.b[0]), r.b[1:]
	rep.Seq = r.uvarint()
	rep.RTT = time.Duration(r.uvarint()) * time.Microsecond
	rep.Delay = millis(r.uvarint())
	if !legacy {
		rep.Backed = millis(r.uvarint())
		rep.Window = millis(r.uvarint())
		rep.Streak = int(min(r.uvarint(), 1<<20))
	}
	rep.Reason = r.str()
	if r.err != nil {
		return rep, r.err
	}
	if rep.State > health.Down {
		return rep, fmt.Errorf("%w: state %d", errMalformed, rep.State)
	}
	return rep, nil
}

// millis reads a duration in milliseconds, capped at a day so that no
// peer can overflow a time computed from it.
func millis(v uint64) time.Duration {
	return time.Duration(min(v, uint64(24*time.Hour/time.Millisecond))) * time.Millisecond
}

func encodeBye(name string) []byte {
	w := header(kindBye)
	w.str(name)
	return w.b
}

func encodePlan(p Plan) []byte {
	w := header(kindPlan)
	w.str(p.Origin)
	w.uvarint(p.Generation)
	w.bytes(p.Body)
	return w.b
}

func decodePlan(r *reader) (Plan, error) {
	p := Plan{Origin: r.str(), Generation: r.uvarint()}
	p.Body = append([]byte(nil), r.bytes()...) // the buffer is memberlist's
	return p, r.err
}

func encodeOverrides(o Overrides) []byte {
	w := header(kindOverrides)
	w.str(o.Origin)
	w.uvarint(o.Version)
	w.bytes(o.Body)
	return w.b
}

func decodeOverrides(r *reader) (Overrides, error) {
	o := Overrides{Origin: r.str(), Version: r.uvarint()}
	o.Body = append([]byte(nil), r.bytes()...)
	return o, r.err
}

// encodeFull wraps whole messages into one push/pull state.
func encodeFull(msgs [][]byte) []byte {
	w := header(kindFull)
	w.uvarint(uint64(len(msgs)))
	for _, m := range msgs {
		w.bytes(m)
	}
	return w.b
}

// message is one decoded message.
type message struct {
	kind      byte
	results   Results
	plan      Plan
	overrides Overrides
	full      [][]byte
	bye       string // the member leaving
	load      LoadReport
}

// decode reads one message. It never panics on bad input: anything it
// cannot read is an error, for the caller to log and drop.
func decode(b []byte) (message, error) {
	if len(b) < 2 {
		return message{}, errMalformed
	}
	if b[0] != wireVersion {
		return message{}, fmt.Errorf("message version %d, want %d", b[0], wireVersion)
	}
	m := message{kind: b[1]}
	r := &reader{b: b[2:]}
	var err error
	switch m.kind {
	case kindResults, kindReports:
		m.results, err = decodeResults(r, m.kind == kindResults)
	case kindPlan:
		m.plan, err = decodePlan(r)
	case kindOverrides:
		m.overrides, err = decodeOverrides(r)
	case kindBye:
		m.bye, err = r.str(), r.err
	case kindLoad:
		m.load, err = decodeLoad(r)
	case kindFull:
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return m, errMalformed
		}
		for range n {
			m.full = append(m.full, r.bytes())
		}
		err = r.err
	default:
		return m, fmt.Errorf("unknown message kind %d", m.kind)
	}
	if err != nil {
		return m, fmt.Errorf("kind %d: %w", m.kind, err)
	}
	return m, nil
}

package dnstap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	dnstappb "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"google.golang.org/protobuf/proto"
)

// output is where frames go: it opens a Frame Streams writer, again
// after a failure.
type output interface {
	open(timeout time.Duration) (*framestream.Writer, io.Closer, error)
	String() string
}

func newOutput(cfg Config) (output, error) {
	switch {
	case cfg.File != "":
		// Written anew at start, so the file is one stream from its
		// START frame; created now, so a path that cannot be written
		// fails the start, not the first query.
		f, err := os.OpenFile(cfg.File, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("dnstap file: %w", err)
		}
		return &fileOutput{path: cfg.File, f: f}, nil
	case cfg.Socket != "":
		return &sockOutput{network: "unix", addr: cfg.Socket}, nil
	default:
		return &sockOutput{network: "tcp", addr: cfg.Address}, nil
	}
}

// sockOutput is a collector on a Unix socket or over TCP, spoken to with
// the bidirectional handshake (READY, ACCEPT, START) fstrm_capture and
// the collectors expect.
type sockOutput struct{ network, addr string }

func (o *sockOutput) String() string { return o.network + ":" + o.addr }

func (o *sockOutput) open(timeout time.Duration) (*framestream.Writer, io.Closer, error) {
	c, err := net.DialTimeout(o.network, o.addr, timeout)
	if err != nil {
		return nil, nil, err
	}
	w, err := framestream.NewWriter(c, &framestream.WriterOptions{
		ContentTypes: [][]byte{dnstappb.FSContentType}, Bidirectional: true, Timeout: timeout,
	})
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	return w, c, nil
}

// fileOutput is a file: one unidirectional stream.
type fileOutput struct {
	path string
	f    *os.File // the file opened at start, used by the first open
}

func (o *fileOutput) String() string { return "file:" + o.path }

func (o *fileOutput) open(time.Duration) (*framestream.Writer, io.Closer, error) {
	f := o.f
	o.f = nil
	if f == nil {
		// After a write error: append a new stream rather than lose
		// what the file holds.
		var err error
		if f, err = os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return nil, nil, err
		}
	}
	w, err := framestream.NewWriter(f, &framestream.WriterOptions{ContentTypes: [][]byte{dnstappb.FSContentType}})
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return w, f, nil
}

// conn is the writer's open stream, if any.
type conn struct {
	w       *framestream.Writer
	c       io.Closer
	retryAt time.Time // no stream: when to try again
	down    bool      // the last attempt failed (logged once per outage)
}

// run writes queued messages until Close, reconnecting as needed.
func (t *Tap) run() {
	defer close(t.done)
	enc := &encoder{}
	var cn conn
	// Connected at once, not at the first query: a collector that is
	// missing is logged at start, and a file is a stream (START, STOP)
	// even when no query came.
	t.connect(&cn)
	for {
		select {
		case m := <-t.queue:
			t.handle(&cn, enc, m)
		case <-t.stop:
			for {
				select {
				case m := <-t.queue:
					t.handle(&cn, enc, m)
					continue
				default:
				}
				break
			}
			if cn.w != nil {
				_ = cn.w.Close() // STOP, and FINISH from a collector
				cn.c.Close()
			}
			return
		}
	}
}

// handle writes m, or drops it when there is no stream, and gives it back
// to the free list; it flushes once the queue is empty.
func (t *Tap) handle(cn *conn, enc *encoder, m *Message) {
	defer func() { t.free <- m }()
	frames := t.frames(m.Response != nil)
	if cn.w == nil && !time.Now().Before(cn.retryAt) {
		t.connect(cn)
	}
	if cn.w == nil {
		t.dropped.Add(uint64(frames))
		return
	}
	err := t.write(cn.w, enc, m)
	if err == nil && len(t.queue) == 0 {
		err = cn.w.Flush()
	}
	if err != nil {
		t.log.Warn("dnstap: write failed; frames are dropped until the output is back", "output", t.out.String(), "err", err)
		cn.c.Close()
		cn.w, cn.down, cn.retryAt = nil, true, time.Now().Add(t.cfg.ReconnectInterval.Duration)
		t.dropped.Add(uint64(frames)) // what bufio held is lost as well, uncounted
		return
	}
	t.sent.Add(uint64(frames))
}

func (t *Tap) connect(cn *conn) {
	w, c, err := t.out.open(DefaultTimeout)
	if err != nil {
		if !cn.down {
			t.log.Warn("dnstap: output unreachable; frames are dropped until it is back", "output", t.out.String(), "err", err)
		}
		cn.down, cn.retryAt = true, time.Now().Add(t.cfg.ReconnectInterval.Duration)
		return
	}
	t.log.Info("dnstap: writing", "output", t.out.String())
	cn.w, cn.c, cn.down = w, c, false
}

// write encodes m's frames and writes them. A frame that cannot be
// encoded (no field of it comes from outside, so never) is skipped.
func (t *Tap) write(w *framestream.Writer, enc *encoder, m *Message) error {
	for _, response := range []bool{false, true} {
		if (!response && !t.cfg.LogQueries()) || (response && (m.Response == nil || !t.cfg.LogResponses())) {
			continue
		}
		frame, err := enc.encode(t, m, response)
		if err != nil {
			t.log.Error("dnstap", "err", err)
			continue
		}
		if _, err := w.WriteFrame(frame); err != nil {
			return err
		}
	}
	return nil
}

// encoder holds one frame's protocol buffer, reused frame after frame.
type encoder struct {
	frame dnstappb.Dnstap
	msg   dnstappb.Message
	buf   []byte
	extra []byte
}

var (
	typeMessage   = dnstappb.Dnstap_MESSAGE
	typeQuery     = dnstappb.Message_AUTH_QUERY
	typeResponse  = dnstappb.Message_AUTH_RESPONSE
	familyInet    = dnstappb.SocketFamily_INET
	familyInet6   = dnstappb.SocketFamily_INET6
	protocolUDP   = dnstappb.SocketProtocol_UDP
	protocolTCP   = dnstappb.SocketProtocol_TCP
	errNoEncoding = errors.New("dnstap: frame not encoded")
)

// encode returns m as an AUTH_QUERY frame, or an AUTH_RESPONSE one with
// the query, the response and the decision.
func (e *encoder) encode(t *Tap, m *Message, response bool) ([]byte, error) {
	msg := &e.msg
	*msg = dnstappb.Message{Type: &typeQuery, SocketFamily: &familyInet, SocketProtocol: &protocolUDP}
	if m.Client.Addr().Is6() {
		msg.SocketFamily = &familyInet6
	}
	if m.TCP {
		msg.SocketProtocol = &protocolTCP
	}
	msg.QueryAddress = m.Client.Addr().AsSlice()
	qport := uint32(m.Client.Port())
	msg.QueryPort = &qport
	if m.Server.IsValid() {
		msg.ResponseAddress = m.Server.Addr().AsSlice()
		rport := uint32(m.Server.Port())
		msg.ResponsePort = &rport
	}
	qsec, qnsec := uint64(m.QueryTime.Unix()), uint32(m.QueryTime.Nanosecond())
	msg.QueryTimeSec, msg.QueryTimeNsec = &qsec, &qnsec
	msg.QueryMessage = m.Query
	e.frame = dnstappb.Dnstap{Identity: t.identity, Version: t.version, Type: &typeMessage, Message: msg}
	if response {
		msg.Type = &typeResponse
		rsec, rnsec := uint64(m.ResponseTime.Unix()), uint32(m.ResponseTime.Nanosecond())
		msg.ResponseTimeSec, msg.ResponseTimeNsec = &rsec, &rnsec
		msg.ResponseMessage = m.Response
		if m.Decided {
			e.extra = appendDecision(e.extra[:0], &m.Decision)
			e.frame.Extra = e.extra
		}
	}
	out, err := proto.MarshalOptions{}.MarshalAppend(e.buf[:0], &e.frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoEncoding, err)
	}
	e.buf = out
	return out, nil
}

// appendDecision writes d as the extra field shows it: space-separated
// key=value pairs, a stable format for grep and for collectors.
func appendDecision(b []byte, d *Decision) []byte {
	region := d.Region
	if region == "" {
		region = "-"
	}
	b = append(b, "gslb record="...)
	b = append(b, d.Record...)
	b = append(b, " type="...)
	b = append(b, d.Type...)
	b = append(b, " policy="...)
	b = append(b, d.Policy...)
	b = append(b, " region="...)
	b = append(b, region...)
	b = append(b, " outcome="...)
	b = append(b, d.Outcome...)
	b = append(b, " fallback="...)
	b = strconv.AppendBool(b, d.Outcome == "fallback")
	b = append(b, " scope="...)
	return strconv.AppendInt(b, int64(d.Scope), 10)
}

package xfr

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// tcpWriter is the dns.ResponseWriter dns.Transfer.Out writes a transfer
// through: each message length-prefixed on the connection, signed with
// TSIG when the request was, each signature chained to the one before
// (RFC 8945 section 5.3.1).
type tcpWriter struct {
	conn       net.Conn
	timeout    time.Duration
	keys       map[string]Key
	requestMAC string // the request's MAC, then each message's
	timersOnly bool
	buf        []byte
}

var _ dns.ResponseWriter = (*tcpWriter)(nil)

func (w *tcpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *tcpWriter) RemoteAddr() net.Addr { return w.conn.RemoteAddr() }
func (w *tcpWriter) TsigStatus() error    { return nil } // checked before the transfer starts
func (w *tcpWriter) TsigTimersOnly(b bool) {
	w.timersOnly = b
}

// Hijack and Close do nothing: the connection stays the listener's, which
// reads the next query or closes it.
func (w *tcpWriter) Hijack()      {}
func (w *tcpWriter) Close() error { return nil }

// WriteMsg packs m, compressed, signs it when it carries a TSIG, and
// writes it.
func (w *tcpWriter) WriteMsg(m *dns.Msg) error {
	m.Compress = true
	var (
		out []byte
		err error
	)
	if m.IsTsig() != nil {
		out, w.requestMAC, err = dns.TsigGenerateWithProvider(m, provider(w.keys), w.requestMAC, w.timersOnly)
	} else {
		out, err = m.Pack()
	}
	if err != nil {
		return fmt.Errorf("pack transfer message: %w", err)
	}
	_, err = w.Write(out)
	return err
}

// Write writes one message, length-prefixed, within the timeout.
func (w *tcpWriter) Write(msg []byte) (int, error) {
	if len(msg) > dns.MaxMsgSize {
		return 0, fmt.Errorf("transfer message of %d bytes is too large", len(msg))
	}
	w.buf = binary.BigEndian.AppendUint16(w.buf[:0], uint16(len(msg)))
	w.buf = append(w.buf, msg...)
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.conn.Write(w.buf); err != nil {
		return 0, fmt.Errorf("write transfer message: %w", err)
	}
	return len(msg), nil
}

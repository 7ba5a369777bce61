package h1

import (
	"bytes"
	"errors"
	"strconv"
)

// Body lengths besides a count of bytes.
const (
	LengthChunked    = -1
	LengthUntilClose = -2
)

// Response is an answer's head, parsed in place in the backend
// connection's buffer.
type Response struct {
	HeadLen    int
	Status     int
	StatusLine []byte // "200 OK": the code and reason, as sent
	Headers    []ResponseHeader
	Length     int64 // of the body, or lengthChunked, lengthUntilClose
	Close      bool  // the backend closes the connection after it
}

type ResponseHeader struct {
	Name, Value []byte
	Drop        bool // it stays with this hop
}

var errBadResponse = errors.New("malformed response head")

// How the fast path treats a header of an answer.
const (
	respKeep = iota
	respContentLength
	respTransferEncoding
	respConnection
	respHop // hop-by-hop: dropped
)

// responseHeaders are the answer's headers the fast path does not simply
// pass on.
var responseHeaders = []headerKind{
	{"Content-Length", respContentLength}, {"Transfer-Encoding", respTransferEncoding}, {"Connection", respConnection},
	{"Keep-Alive", respHop}, {"Proxy-Connection", respHop}, {"Proxy-Authenticate", respHop},
	{"Proxy-Authorization", respHop}, {"TE", respHop}, {"Upgrade", respHop},
}

func respKind(name []byte) int { return kindOf(responseHeaders, name, respKeep) }

// Parse reads an answer's head to a request of method. Headers that stay
// with this hop are marked: the hop-by-hop ones, those the Connection
// header names, and Content-Length beside chunked framing.
// Transfer-Encoding goes on: the body is relayed as it is framed.
func (r *Response) Parse(head []byte, method string) error {
	*r = Response{HeadLen: len(head), Headers: r.Headers[:0], Length: LengthUntilClose}
	line, rest, ok := bytes.Cut(head, crlf)
	if !ok {
		return errBadResponse
	}
	if err := r.parseStatusLine(line); err != nil {
		return err
	}
	f := framing{length: -1, http10: r.Close}
	for {
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok {
			return errBadResponse
		}
		if len(line) == 0 {
			break
		}
		if err := r.parseHeader(line, &f); err != nil {
			return err
		}
	}
	r.setLength(method, f)
	return nil
}

// framing is what the headers say of the body and the connection.
type framing struct {
	length  int64 // Content-Length, or -1
	chunked bool
	named   bool // Connection names other headers
	http10  bool
}

// parseStatusLine reads "HTTP/1.x NNN reason"; an HTTP/1.0 answer closes
// unless it asks for keep-alive.
func (r *Response) parseStatusLine(line []byte) error {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errBadResponse
	}
	r.Close = line[7] == '0'
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errBadResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	r.Status, r.StatusLine = code, line[9:]
	return nil
}

// parseHeader reads one header line into r.Headers and f.
func (r *Response) parseHeader(line []byte, f *framing) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || bytes.IndexByte(line[:colon], ' ') >= 0 || bytes.IndexByte(line[:colon], '\t') >= 0 {
		return errBadResponse
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	h := ResponseHeader{Name: name, Value: value}
	switch respKind(name) {
	case respContentLength:
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 || (f.length >= 0 && n != f.length) {
			return errBadResponse
		}
		f.length = n
	case respTransferEncoding:
		if !bytes.EqualFold(value, []byte("chunked")) {
			return errors.New("unsupported Transfer-Encoding " + strconv.Quote(string(value)))
		}
		f.chunked = true
	case respConnection:
		h.Drop = true
		r.connectionTokens(value, f)
	case respHop:
		h.Drop = true
	}
	r.Headers = append(r.Headers, h)
	return nil
}

// connectionTokens applies a Connection header's tokens.
func (r *Response) connectionTokens(value []byte, f *framing) {
	for tok := range bytes.SplitSeq(value, []byte(",")) {
		switch tok = bytes.TrimSpace(tok); {
		case bytes.EqualFold(tok, []byte("close")):
			r.Close = true
		case bytes.EqualFold(tok, []byte("keep-alive")):
			if f.http10 {
				r.Close = false
			}
		case len(tok) > 0:
			f.named = true
		}
	}
}

// setLength decides the body's length (RFC 9112 section 6.3) and drops
// Content-Length beside chunked framing and the headers Connection names.
func (r *Response) setLength(method string, f framing) {
	switch {
	case method == "HEAD" || r.Status < 200 || r.Status == 204 || r.Status == 304:
		r.Length = 0
	case f.chunked:
		r.Length = LengthChunked
	case f.length >= 0:
		r.Length = f.length
	default:
		r.Close = true
	}
	if !f.chunked && !f.named {
		return
	}
	for i := range r.Headers {
		h := &r.Headers[i]
		if f.chunked && respKind(h.Name) == respContentLength || f.named && r.namedByConnection(h.Name) {
			h.Drop = true
		}
	}
}

func (r *Response) namedByConnection(name []byte) bool {
	for _, h := range r.Headers {
		if respKind(h.Name) != respConnection {
			continue
		}
		for tok := range bytes.SplitSeq(h.Value, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

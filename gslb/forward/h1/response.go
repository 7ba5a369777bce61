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
	if !ok || len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errBadResponse
	}
	http10 := line[7] == '0'
	r.Close = http10
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
	length, chunked, named := int64(-1), false, false
	for {
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok {
			return errBadResponse
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.IndexByte(line[:colon], ' ') >= 0 || bytes.IndexByte(line[:colon], '\t') >= 0 {
			return errBadResponse
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		h := ResponseHeader{Name: name, Value: value}
		switch respKind(name) {
		case respContentLength:
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return errBadResponse
			}
			length = n
		case respTransferEncoding:
			if !bytes.EqualFold(value, []byte("chunked")) {
				return errors.New("unsupported Transfer-Encoding " + strconv.Quote(string(value)))
			}
			chunked = true
		case respConnection:
			h.Drop = true
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				switch tok = bytes.TrimSpace(tok); {
				case bytes.EqualFold(tok, []byte("close")):
					r.Close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					if http10 {
						r.Close = false
					}
				case len(tok) > 0:
					named = true
				}
			}
		case respHop:
			h.Drop = true
		}
		r.Headers = append(r.Headers, h)
	}
	switch {
	case method == "HEAD" || code < 200 || code == 204 || code == 304:
		r.Length = 0
	case chunked:
		r.Length = LengthChunked
	case length >= 0:
		r.Length = length
	default:
		r.Close = true
	}
	if chunked || named {
		for i := range r.Headers {
			h := &r.Headers[i]
			if chunked && respKind(h.Name) == respContentLength || named && r.namedByConnection(h.Name) {
				h.Drop = true
			}
		}
	}
	return nil
}

// namedByConnection reports whether a Connection header (any of them)
// names a header.
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

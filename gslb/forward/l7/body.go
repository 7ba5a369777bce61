package l7

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// bodyPace is when the next bytes of a request body are due: within
// body_timeout of the last read (nginx's client_body_timeout), and, once
// body_timeout has passed, at min_body_rate on average (Apache's
// mod_reqtimeout MinRate), so that a client trickling a byte now and
// then cannot hold a connection, and a backend connection, for ever.
type bodyPace struct {
	start   time.Time
	timeout time.Duration // 0: no pace at all
	rate    int64         // bytes a second; 0: no minimum rate
	limit   time.Time     // read_timeout's end for the whole request; zero: none
	read    int64
}

// deadline is the read deadline of the body's next read.
func (p *bodyPace) deadline(now time.Time) time.Time {
	d := now.Add(p.timeout)
	if p.rate > 0 {
		owed := time.Duration(float64(p.read) / float64(p.rate) * float64(time.Second))
		if r := p.start.Add(p.timeout + owed); r.Before(d) {
			d = r
		}
	}
	if !p.limit.IsZero() && p.limit.Before(d) {
		d = p.limit
	}
	return d
}

// errBodyTimeout is a request body that came too slowly: 408.
var errBodyTimeout = errors.New("request body too slow (body_timeout, min_body_rate)")

// pacedBody is a net/http request body read at its pace: each read sets
// the connection's (or stream's) read deadline first.
type pacedBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	pace    bodyPace
	expired atomic.Bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(b.pace.deadline(time.Now())) // unsupported: no pace
	n, err := b.ReadCloser.Read(p)
	b.pace.read += int64(n)
	switch {
	case err == io.EOF:
		// The server's read for the client's going away comes next:
		// this deadline is not for it.
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && timedOut(err):
		b.expired.Store(true)
		err = errors.Join(errBodyTimeout, err)
	}
	return n, err
}

// paceBody wraps r's body in its pace, when the listener has one.
func paceBody(w http.ResponseWriter, r *http.Request, rs *reqState) {
	hc := rs.hc
	if hc.bodyTimeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	pb := &pacedBody{ReadCloser: r.Body, rc: http.NewResponseController(w),
		pace: bodyPace{start: time.Now(), timeout: hc.bodyTimeout, rate: hc.minBodyRate}}
	if rt := hc.readTimeout; rt > 0 {
		pb.pace.limit = rs.start.Add(rt)
	}
	r.Body, rs.paced = pb, pb
}

// bodyExpired reports whether the request's body came too slowly.
func (rs *reqState) bodyExpired() bool { return rs.paced != nil && rs.paced.expired.Load() }

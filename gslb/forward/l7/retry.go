package l7

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
)

// budgetWindow is the retry budget's window, in one-second buckets.
const budgetWindow = 10

// retryBudget caps a pool's retries at a share of its requests over the
// last budgetWindow seconds, plus a floor a second (Finagle's and
// Linkerd's retry budgets): when every backend fails, retries add at most
// that share to their load rather than multiplying it.
//
// Counts live in one-second buckets of atomics. A bucket is reused when
// its second comes round again, and a count added in the instant it is
// being reset may be lost: the budget is a bound on a rate, and a count
// or two off does not change it.
type retryBudget struct {
	buckets [budgetWindow]budgetBucket
}

type budgetBucket struct {
	sec               atomic.Int64 // the unix second the counts are for
	requests, retries atomic.Int64
}

func (rb *retryBudget) bucket(sec int64) *budgetBucket {
	b := &rb.buckets[sec%budgetWindow]
	if s := b.sec.Load(); s != sec && b.sec.CompareAndSwap(s, sec) {
		b.requests.Store(0)
		b.retries.Store(0)
	}
	return b
}

// request counts a request to the pool, which adds to the budget.
func (rb *retryBudget) request(nowNS int64) {
	rb.bucket(nowNS / 1e9).requests.Add(1)
}

// spend takes a retry from the budget, if there is one left: retries in
// the window stay below ratio times its requests plus minPerSec a second.
func (rb *retryBudget) spend(nowNS int64, ratio float64, minPerSec int) bool {
	sec := nowNS / 1e9
	var requests, retries int64
	for i := range rb.buckets {
		b := &rb.buckets[i]
		if s := b.sec.Load(); s <= sec && sec-s < budgetWindow {
			requests += b.requests.Load()
			retries += b.retries.Load()
		}
	}
	if float64(retries) >= ratio*float64(requests)+float64(minPerSec*budgetWindow) {
		return false
	}
	rb.bucket(sec).retries.Add(1)
	return true
}

// idempotent reports whether a request may be sent twice without harm
// (RFC 9110, section 9.2.2), or says so with an idempotency key as
// net/http's own client retries go by.
func idempotent(r *http.Request) bool {
	return idempotentBy(r.Method, func(name string) bool { _, ok := r.Header[name]; return ok })
}

// idempotentBy is idempotent for a method and the request's headers, as
// has tells of them by canonical name.
func idempotentBy(method string, has func(name string) bool) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return has("Idempotency-Key") || has("X-Idempotency-Key")
}

// requestBody is a request body as the tries see it: kept whole when it
// fits the pool's retry_buffer, so that any try can send it again, or
// streamed once when it does not.
type requestBody struct {
	buf    []byte        // the whole body, when kept
	stream io.ReadCloser // otherwise: what is left of it, after buf's head
	kept   bool
	read   atomic.Bool // a try has read from the stream: it cannot be sent again
	// failed is set when reading the client's body failed (too large, cut
	// short): the try's failure is the client's, not the backend's.
	failed atomic.Bool
}

// newRequestBody reads up to limit bytes of r's body, to keep it for
// retries; nil when r has no body. A body larger than limit is streamed
// with the part already read in front.
func newRequestBody(r *http.Request, limit int) (*requestBody, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	if limit <= 0 || r.ContentLength > int64(limit) {
		return &requestBody{stream: r.Body}, nil
	}
	size := limit
	if r.ContentLength > 0 {
		size = int(r.ContentLength)
	}
	// One byte more than kept, to tell a body of exactly limit bytes from
	// a longer one.
	buf := make([]byte, min(size, limit)+1)
	n, err := io.ReadFull(r.Body, buf)
	buf = buf[:n]
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if r.ContentLength > 0 && int64(n) < r.ContentLength {
			return nil, io.ErrUnexpectedEOF // the client stopped short
		}
		return &requestBody{buf: buf, kept: true}, nil
	case err != nil:
		return nil, err
	}
	return &requestBody{buf: buf, stream: r.Body}, nil
}

// reader returns the body for one try, or ok false when it cannot be sent
// again.
func (b *requestBody) reader() (rc io.ReadCloser, ok bool) {
	if b.kept {
		return io.NopCloser(bytes.NewReader(b.buf)), true
	}
	if b.read.Load() {
		return nil, false
	}
	return &streamBody{b: b, r: io.MultiReader(bytes.NewReader(b.buf), b.stream)}, true
}

// streamBody is a try's view of a body that is not kept: its first read
// makes the body spent. Close is left to the server, which owns the
// client's body.
type streamBody struct {
	b *requestBody
	r io.Reader
}

func (s *streamBody) Read(p []byte) (int, error) {
	s.b.read.Store(true)
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.b.failed.Store(true)
	}
	return n, err
}

func (s *streamBody) Close() error { return nil }

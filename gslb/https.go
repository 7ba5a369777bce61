package gslb

// ServiceParams are what a dynamic HTTPS record (RFC 9460) says besides
// where to connect: the protocols and the port a client should use. The
// address hints are the decision itself: the A and AAAA records of the
// same name, decided for the same client.
type ServiceParams struct {
	ALPN []string // SvcParamKey alpn; none: the key is left out
	Port uint16   // SvcParamKey port; 0: left out (the default, 443)
}

// HTTPSParams returns the service parameters r's HTTPS answer carries when
// pool answers: the pool's when it has its own, else the record's; nil when
// r answers no HTTPS queries.
func (r *Record) HTTPSParams(pool *Pool) *ServiceParams {
	if pool != nil && pool.HTTPS != nil {
		return pool.HTTPS
	}
	return r.HTTPS
}

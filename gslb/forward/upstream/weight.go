package upstream

// MaxRuntimeWeight bounds weights set through the admin API, as the
// configuration's are.
const MaxRuntimeWeight = 1_000_000

// SetRuntimeWeight sets the backend's weight at runtime, for blue-green
// and canary shifts within a pool; it holds across reloads until the
// file's weight for the backend changes. It takes effect when the pool is
// built again. Weight 0 takes the backend out of rotation without
// draining it.
func (b *Backend) SetRuntimeWeight(weight int) {
	st := b.State
	st.weightFrom.Store(int64(b.ConfigWeight))
	st.runtimeW.Store(int64(weight))
	st.weightSet.Store(true)
}

// ClearRuntimeWeight puts the backend back on its configured weight when
// the pool is built again.
func (b *Backend) ClearRuntimeWeight() { b.State.weightSet.Store(false) }

// weightFor returns the weight a backend gets: the one the admin API set,
// unless the file's has changed since, in which case the file's wins.
// A runtime weight of 0 keeps the configured one for the balancers'
// tables and takes the backend out of rotation instead.
func (s *BackendState) weightFor(configured int) int {
	if !s.weightSet.Load() {
		s.noWeight.Store(false)
		return configured
	}
	if s.weightFrom.Load() != int64(configured) {
		s.log.Info("reload: the file's weight replaces the one set through the admin API",
			"pool", s.Pool.Name, "backend", s.Addr, "runtime", s.runtimeW.Load(), "file", configured)
		s.weightSet.Store(false)
		s.noWeight.Store(false)
		return configured
	}
	w := s.runtimeW.Load()
	s.noWeight.Store(w == 0)
	if w == 0 {
		return configured
	}
	return int(w)
}

// RuntimeWeight returns the weight set through the admin API, if one is.
func (s *BackendState) RuntimeWeight() (w int64, ok bool) {
	if !s.weightSet.Load() {
		return 0, false
	}
	return s.runtimeW.Load(), true
}

// WeightZero reports whether the weight in force is a runtime 0, which
// keeps the backend out of rotation without draining it.
func (s *BackendState) WeightZero() bool { return s.noWeight.Load() }

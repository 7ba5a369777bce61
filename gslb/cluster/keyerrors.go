package cluster

import (
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// keyErrorWindow is how often a node says again that a source keeps
// sending what its keys cannot read: the first error from a source is
// logged at once, the rest are counted and summed up once a window.
const keyErrorWindow = 30 * time.Second

// maxKeyErrorSources bounds the sources a window tracks one by one, since
// UDP sources can be forged; the rest are summed up together.
const maxKeyErrorSources = 64

// Why a message could not be read, as memberlist words it (security.go,
// net.go), and the metric's reason label for each.
var keyErrorKinds = []struct{ text, reason, hint string }{
	{"no installed keys could decrypt the message", "wrong_key",
		"the sender's cluster key is not one of ours"},
	{"encryption is configured but remote state is not encrypted", "clear_text",
		"the sender has no cluster key: it gossips in clear"},
	{"remote state is encrypted and encryption is not configured", "unexpected_encryption",
		"the sender encrypts with a cluster key and this node has none"},
}

// keyErrorKind is the kind of key problem memberlist's message says, if it
// says one.
func keyErrorKind(msg string) (reason, hint string, ok bool) {
	for _, k := range keyErrorKinds {
		if strings.Contains(msg, k.text) {
			return k.reason, k.hint, true
		}
	}
	return "", "", false
}

// keyErrors counts and rate-limits the messages a node could not read for
// want of the right key, by source address: memberlist logs one line per
// connection (twice a second per member with the wrong key, as its join
// is retried), which floods a log without saying more.
type keyErrors struct {
	log    *slog.Logger
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	total   map[string]uint64 // by reason, since start: the metric
	start   time.Time         // of the window
	sources map[string]*keySource
	others  uint64 // errors from sources past maxKeyErrorSources
}

type keySource struct {
	reason, hint string
	muted        uint64 // counted but not logged in this window
}

func newKeyErrors(log *slog.Logger) *keyErrors {
	return &keyErrors{log: log, window: keyErrorWindow, now: time.Now,
		total: map[string]uint64{}, sources: map[string]*keySource{}}
}

// observe takes a memberlist log line and reports whether it was a key
// error (then handled here: counted, and logged or muted).
func (k *keyErrors) observe(line string) bool {
	reason, hint, ok := keyErrorKind(line)
	if !ok {
		return false
	}
	src := sourceOf(line)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.total[reason]++
	now := k.now()
	if now.Sub(k.start) >= k.window {
		k.flush(now)
	}
	s := k.sources[src]
	switch {
	case s != nil:
		s.muted++
		return true
	case len(k.sources) >= maxKeyErrorSources:
		k.others++
		return true
	}
	k.sources[src] = &keySource{reason: reason, hint: hint}
	k.log.Error("cluster: cannot read a message: is the sender's cluster key right?", "from", src, "reason", reason,
		"why", hint, "repeats", "summed up every "+k.window.String())
	return true
}

// tick sums up the window when it is over; the node calls it now and
// then, so that a summary comes even when the errors stop.
func (k *keyErrors) tick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := k.now(); now.Sub(k.start) >= k.window {
		k.flush(now)
	}
}

// flush logs what the window muted and starts a new one; k.mu is held.
func (k *keyErrors) flush(now time.Time) {
	for src, s := range k.sources {
		if s.muted > 0 {
			k.log.Error("cluster: still cannot read messages from a source", "from", src, "reason", s.reason,
				"why", s.hint, "count", s.muted, "in", now.Sub(k.start).Round(time.Second).String())
		}
	}
	if k.others > 0 {
		k.log.Error("cluster: cannot read messages from more sources", "count", k.others,
			"in", now.Sub(k.start).Round(time.Second).String())
	}
	k.start, k.sources, k.others = now, map[string]*keySource{}, 0
}

// counts is the errors by reason since start.
func (k *keyErrors) counts() map[string]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]uint64, len(keyErrorKinds))
	for _, kind := range keyErrorKinds {
		out[kind.reason] = k.total[kind.reason]
	}
	return out
}

// sourceOf is the sender's address in a memberlist log line ("...
// from=127.0.0.2:38887"), without the port: a stream's port is a fresh
// one each time, so the host is what names the sender.
func sourceOf(line string) string {
	i := strings.LastIndex(line, "from=")
	if i < 0 {
		return "unknown"
	}
	addr, _, _ := strings.Cut(line[i+len("from="):], " ")
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// joinReason words why a join failed for the operator, naming a key
// problem when memberlist's error says one. memberlist words the errors
// from the joiner's side: it could not read the seed's answer.
func joinReason(err error) (string, bool) {
	msg := err.Error()
	switch reason, _, _ := keyErrorKind(msg); reason {
	case "wrong_key":
		return "wrong cluster key: the seeds' key is not one of this member's (no installed keys could decrypt the message)", true
	case "clear_text":
		return "the seeds have no cluster key: they gossip in clear and this member encrypts", true
	case "unexpected_encryption":
		return "no cluster key: the seeds encrypt their gossip and this member has no key (-key-file, " +
			"MERIDIAN_CLUSTER_KEY or cluster.key_file)", true
	}
	return "no seed answered: " + firstLine(msg), false
}

// firstLine is memberlist's error without the multierror's framing.
func firstLine(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*")); l != "" && !strings.HasSuffix(l, "error occurred:") {
			return l
		}
	}
	return msg
}

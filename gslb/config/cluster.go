package config

import (
	"net"
	"os"
	"time"

	"github.com/meridian-gslb/meridian/gslb/quorum"
	"github.com/meridian-gslb/meridian/internal/gossipkey"
	"github.com/meridian-gslb/meridian/internal/loopback"
)

// Cluster defaults.
const (
	DefaultStaleAfter  = quorum.DefaultStaleAfter // a result older than this does not vote
	DefaultJoinTimeout = 10 * time.Second
)

// Cluster is [cluster]: this DNS node's membership of the gossip cluster
// of DNS nodes and probe agents. Without bind the node runs alone and
// checks its targets itself, as one vantage.
type Cluster struct {
	Name      string   `toml:"name"`      // unique in the cluster; the host name when empty
	Bind      string   `toml:"bind"`      // host:port for gossip (UDP and TCP); empty: no cluster
	Advertise string   `toml:"advertise"` // host:port the others reach this node at, when not bind
	Seeds     []string `toml:"seeds"`     // host:port of members to join through
	// KeyFile holds the gossip keys, base64, one per line; the first
	// encrypts and all decrypt, which is how keys rotate.
	KeyFile  string `toml:"key_file"`
	Insecure bool   `toml:"insecure"` // allow gossip in clear beyond loopback
	// Quorum is how many fresh vantages must see a target down: "majority"
	// (the default), a count ("2") or a share ("60%").
	Quorum      string   `toml:"quorum"`
	StaleAfter  Duration `toml:"stale_after"`  // a result older than this does not vote; DefaultStaleAfter
	JoinTimeout Duration `toml:"join_timeout"` // how long to wait for a seed before serving anyway; DefaultJoinTimeout

	Keys [][]byte    `toml:"-"` // read from KeyFile by validation
	Rule quorum.Rule `toml:"-"` // Quorum, parsed
}

// Enabled reports whether the node is a cluster member.
func (c Cluster) Enabled() bool { return c.Bind != "" }

// setDefaults names a member after its host when it has no name.
func (cl *Cluster) setDefaults() {
	if cl.Enabled() && cl.Name == "" {
		cl.Name, _ = os.Hostname()
	}
}

// validate checks [cluster], parses its quorum and reads its key file,
// named relative to the configuration file (resolve).
func (cl *Cluster) validate(v *validator, resolve func(string) string) {
	if !cl.Enabled() {
		if len(cl.Seeds) > 0 || cl.KeyFile != "" {
			v.fail("cluster.bind", "is needed to join a cluster (seeds or key_file are set)")
		}
		return
	}
	for key, addr := range map[string]string{"cluster.bind": cl.Bind, "cluster.advertise": cl.Advertise} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			v.fail(key, "%q is not host:port", addr)
		}
	}
	for _, s := range cl.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			v.fail("cluster.seeds", "%q is not host:port", s)
		}
	}
	rule, err := quorum.ParseRule(cl.Quorum)
	if err != nil {
		v.fail("cluster.quorum", "%v", err)
	}
	cl.Rule = rule
	if cl.StaleAfter.Duration <= 0 {
		v.fail("cluster.stale_after", "must be positive, got %s", cl.StaleAfter)
	}
	if cl.JoinTimeout.Duration < 0 {
		v.fail("cluster.join_timeout", "must not be negative, got %s", cl.JoinTimeout)
	}
	if cl.KeyFile == "" && !cl.Insecure {
		if a := loopback.Beyond(append([]string{cl.Bind, cl.Advertise}, cl.Seeds...)...); a != "" {
			v.fail("cluster.key_file", "gossip on %s would be in clear: set key_file, or insecure = true to accept the risk", a)
		}
	}
	if cl.KeyFile != "" {
		b, err := os.ReadFile(resolve(cl.KeyFile))
		if err != nil {
			v.fail("cluster.key_file", "%v", err)
			return
		}
		if cl.Keys, err = ParseKeys(b); err != nil {
			v.fail("cluster.key_file", "%s: %v", cl.KeyFile, err)
		}
	}
}

// ParseKey reads a gossip key written in base64 (gossipkey.Parse).
func ParseKey(s string) ([]byte, error) { return gossipkey.Parse(s) }

// ParseKeys reads a key file: one base64 key per line, the first the one
// that encrypts (gossipkey.ParseFile).
func ParseKeys(src []byte) ([][]byte, error) { return gossipkey.ParseFile(src) }

package dnstap

import (
	"fmt"
	"net"
	"time"

	"github.com/meridian-gslb/meridian/internal/tomlfile"
)

// Defaults of Config, the values of [server.dnstap] left out.
const (
	DefaultSample  = 1.0             // sample: every query
	DefaultBuffer  = 4096            // buffer: messages waiting for the writer
	DefaultTimeout = 2 * time.Second // a write or the handshake to the collector
	DefaultRetry   = time.Second     // reconnect_interval: between attempts to reach the collector
)

// Config is [server.dnstap]: where frames go and which. Exactly one of
// Socket, Address and File is set when dnstap is on; none leaves it off.
type Config struct {
	Socket  string `toml:"socket"`  // a Unix socket path (fstrm_capture -u, a collector)
	Address string `toml:"address"` // host:port of a TCP collector
	File    string `toml:"file"`    // a file, written anew at start (dnstap-read reads it)
	// Sample is the share of queries logged, 0 to 1 (a query and its
	// response together); 1 logs all.
	Sample    float64 `toml:"sample"`
	Queries   *bool   `toml:"queries"`   // AUTH_QUERY messages; default true
	Responses *bool   `toml:"responses"` // AUTH_RESPONSE messages, with the decision; default true
	Identity  string  `toml:"identity"`  // the frames' identity; default server.identity
	Version   string  `toml:"version"`   // the frames' version; default server.version
	// Buffer is how many queries may wait for the writer (a bank's size;
	// there are two); past it they are dropped and counted.
	Buffer            int               `toml:"buffer"`
	ReconnectInterval tomlfile.Duration `toml:"reconnect_interval"`
}

// On reports whether dnstap is configured.
func (c *Config) On() bool { return c.Socket != "" || c.Address != "" || c.File != "" }

// LogQueries and LogResponses report the effective Queries and Responses.
func (c *Config) LogQueries() bool { return c.Queries == nil || *c.Queries }

// LogResponses reports the effective Responses.
func (c *Config) LogResponses() bool { return c.Responses == nil || *c.Responses }

// SetDefaults fills what the file left out.
func (c *Config) SetDefaults() {
	if c.Sample == 0 {
		c.Sample = DefaultSample
	}
	if c.Buffer == 0 {
		c.Buffer = DefaultBuffer
	}
	if c.ReconnectInterval.Duration == 0 {
		c.ReconnectInterval.Duration = DefaultRetry
	}
}

// Problem is one invalid setting: the key under [server.dnstap] and why.
type Problem struct {
	Key, Msg string
}

// Validate returns what is wrong with c, by key.
func (c *Config) Validate() []Problem {
	var out []Problem
	fail := func(key, format string, args ...any) {
		out = append(out, Problem{key, fmt.Sprintf(format, args...)})
	}
	n := 0
	for _, s := range []string{c.Socket, c.Address, c.File} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		fail("socket", "give one of socket, address and file, not %d", n)
	}
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			fail("address", "%q is not host:port", c.Address)
		}
	}
	if c.Sample <= 0 || c.Sample > 1 {
		fail("sample", "must be more than 0 and at most 1 (a share of queries), got %g", c.Sample)
	}
	if !c.LogQueries() && !c.LogResponses() {
		fail("queries", "queries and responses are both false: nothing would be logged")
	}
	if c.Buffer < 1 || c.Buffer > 1<<20 {
		fail("buffer", "must be 1 to 1048576 messages, got %d", c.Buffer)
	}
	if c.ReconnectInterval.Duration < 10*time.Millisecond {
		fail("reconnect_interval", "must be at least 10ms, got %s", c.ReconnectInterval)
	}
	return out
}

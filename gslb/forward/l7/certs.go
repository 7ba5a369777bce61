package l7

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/prometheus/client_golang/prometheus"
)

// certFile is a certificate's files, resolved against the configuration's
// folder.
type certFile struct{ cert, key string }

// certSet is an https listener's certificates, indexed by the names they
// are for: the ClientHello's server name picks one, exactly, then by a
// wildcard certificate for its parent, and without a match (or without
// SNI) the first configured is served.
type certSet struct {
	files    []certFile
	content  [][]byte // each file pair's bytes, to tell a change
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // "example.com" for *.example.com
	first    *tls.Certificate
	leaves   []*x509.Certificate // by file pair, for metrics
}

// certFilesOf returns listener i's certificate files.
func certFilesOf(cfg *config.Forward, lc *config.ForwardListener) []certFile {
	out := make([]certFile, 0, len(lc.Certificates))
	for _, c := range lc.Certificates {
		out = append(out, certFile{cert: cfg.ResolvePath(c.CertFile), key: cfg.ResolvePath(c.KeyFile)})
	}
	return out
}

// readCertFiles reads every file pair.
func readCertFiles(files []certFile) ([][]byte, [][2][]byte, error) {
	content := make([][]byte, 0, len(files))
	pairs := make([][2][]byte, 0, len(files))
	for _, f := range files {
		c, err := os.ReadFile(f.cert)
		if err != nil {
			return nil, nil, err
		}
		k, err := os.ReadFile(f.key)
		if err != nil {
			return nil, nil, err
		}
		content = append(content, append(append(bytes.Clone(c), 0), k...))
		pairs = append(pairs, [2][]byte{c, k})
	}
	return content, pairs, nil
}

// loadCertSet reads and parses the certificates.
func loadCertSet(files []certFile) (*certSet, error) {
	content, pairs, err := readCertFiles(files)
	if err != nil {
		return nil, err
	}
	return parseCertSet(files, content, pairs)
}

func parseCertSet(files []certFile, content [][]byte, pairs [][2][]byte) (*certSet, error) {
	s := &certSet{files: files, content: content, exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for i, p := range pairs {
		c, err := tls.X509KeyPair(p[0], p[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[i].cert, err)
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("%s: %w", files[i].cert, err)
			}
			c.Leaf = leaf
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if parent, ok := strings.CutPrefix(n, "*."); ok {
				if _, dup := s.wildcard[parent]; !dup {
					s.wildcard[parent] = &c
				}
			} else if _, dup := s.exact[n]; !dup {
				s.exact[n] = &c
			}
		}
		if s.first == nil {
			s.first = &c
		}
		s.leaves = append(s.leaves, leaf)
	}
	if s.first == nil {
		return nil, errors.New("no certificate")
	}
	return s, nil
}

func (s *certSet) lookup(serverName string) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if c := s.exact[name]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := s.wildcard[parent]; c != nil {
			return c
		}
	}
	return s.first
}

// certStore is an https listener's certificates in force, which a poll
// of their files replaces when they change: a renewed certificate is
// served from the next handshake on, and one that does not parse leaves
// the old in place, logged and counted.
type certStore struct {
	lname    string
	log      *slog.Logger
	cur      atomic.Pointer[certSet]
	interval atomic.Int64 // ns between polls
	mu       sync.Mutex   // one reload at a time
	reloads  [2]atomic.Uint64
}

const (
	reloadOK = iota
	reloadFailed
)

func newCertStore(listener string, s *certSet, log *slog.Logger) *certStore {
	cs := &certStore{lname: listener, log: log}
	cs.cur.Store(s)
	cs.interval.Store(int64(config.DefaultCertificateReload))
	return cs
}

func (cs *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load().lookup(hello.ServerName), nil
}

// set replaces the certificates, as a configuration reload does.
func (cs *certStore) set(s *certSet, every time.Duration) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.cur.Store(s)
	cs.interval.Store(int64(every))
}

// watch polls the files until ctx ends or stop is closed.
func (cs *certStore) watch(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTimer(time.Duration(cs.interval.Load()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		cs.poll()
		t.Reset(time.Duration(cs.interval.Load()))
	}
}

// poll reads the files and, when any changed, loads them all.
func (cs *certStore) poll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cur := cs.cur.Load()
	content, pairs, err := readCertFiles(cur.files)
	if err == nil {
		same := len(content) == len(cur.content)
		for i := 0; same && i < len(content); i++ {
			same = bytes.Equal(content[i], cur.content[i])
		}
		if same {
			return
		}
		var next *certSet
		if next, err = parseCertSet(cur.files, content, pairs); err == nil {
			cs.cur.Store(next)
			cs.reloads[reloadOK].Add(1)
			cs.log.Info("certificates reloaded", "listener", cs.lname, "certificates", len(next.leaves))
			return
		}
	}
	cs.reloads[reloadFailed].Add(1)
	cs.log.Error("certificate reload failed; serving the certificates in force", "listener", cs.lname, "err", err)
}

func (cs *certStore) collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descCertReloads, prometheus.CounterValue, float64(cs.reloads[reloadOK].Load()), cs.lname, "success")
	ch <- prometheus.MustNewConstMetric(descCertReloads, prometheus.CounterValue, float64(cs.reloads[reloadFailed].Load()), cs.lname, "failure")
	s := cs.cur.Load()
	for i, leaf := range s.leaves {
		ch <- prometheus.MustNewConstMetric(descCertNotAfter, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), cs.lname, s.files[i].cert)
	}
}

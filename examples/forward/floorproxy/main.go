// Command floorproxy is the floor the L7 benchmark compares Meridian's
// fast path with: a keep-alive HTTP/1.1 proxy in the same model (a
// goroutine per client connection, Go's netpoller, the same reads and
// writes per request) and none of the features. It takes request heads
// without bodies and answers with a Content-Length only, which is what
// ../shared/bench's backends send.
//
//	go build -o bin/floorproxy ./examples/forward/floorproxy
//	taskset -c 1 bin/floorproxy -listen 127.0.0.34:8080 &            # a backend connection per client connection
//	taskset -c 1 bin/floorproxy -listen 127.0.0.35:8080 -pool &      # round robin per request over shared idle connections
//	../shared/bench/http-compare.sh -r 3 floor=http://127.0.0.34:8080/ floor-pool=http://127.0.0.35:8080/
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// proxy is the proxy's backends and, with -pool, their idle connections.
type proxy struct {
	backends []string
	pool     bool
	next     atomic.Uint64
	idle     []idleList
}

type idleList struct {
	mu    sync.Mutex
	conns []*backendConn
}

type backendConn struct {
	conn net.Conn
	buf  []byte
}

func main() {
	listen := flag.String("listen", "127.0.0.34:8080", "address to listen on")
	backends := flag.String("backends", "127.0.0.21:18080,127.0.0.22:18080,127.0.0.23:18080", "comma-separated backends")
	pool := flag.Bool("pool", false, "pick a backend per request and share idle connections, as Meridian does")
	flag.Parse()
	p := &proxy{backends: strings.Split(*backends, ","), pool: *pool}
	p.idle = make([]idleList, len(p.backends))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go p.serve(c)
	}
}

// serve answers a client connection's requests in order.
func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	var pinned *backendConn // without -pool: this connection's backend
	in := make([]byte, 8192)
	have := 0
	for {
		i := bytes.Index(in[:have], []byte("\r\n\r\n"))
		for i < 0 {
			n, err := c.Read(in[have:])
			if err != nil {
				return
			}
			have += n
			i = bytes.Index(in[:have], []byte("\r\n\r\n"))
		}
		k := int(p.next.Add(1) % uint64(len(p.backends)))
		be := pinned
		if be == nil || p.pool {
			var err error
			if be, err = p.get(k); err != nil {
				return
			}
		}
		answer, err := exchange(be, in[:i+4])
		if err != nil {
			be.conn.Close()
			return
		}
		have = copy(in, in[i+4:have])
		if _, err := c.Write(answer); err != nil {
			return
		}
		if p.pool {
			p.put(k, be)
		} else {
			pinned = be
		}
	}
}

// exchange sends a request head and reads the answer, which has a
// Content-Length.
func exchange(be *backendConn, head []byte) ([]byte, error) {
	if _, err := be.conn.Write(head); err != nil {
		return nil, err
	}
	got := 0
	for {
		n, err := be.conn.Read(be.buf[got:])
		if err != nil {
			return nil, err
		}
		got += n
		j := bytes.Index(be.buf[:got], []byte("\r\n\r\n"))
		if j < 0 {
			continue
		}
		k := bytes.Index(bytes.ToLower(be.buf[:j]), []byte("\r\ncontent-length:"))
		if k < 0 {
			return nil, fmt.Errorf("no Content-Length")
		}
		e := bytes.IndexByte(be.buf[k+2:j+2], '\r')
		l, err := strconv.Atoi(strings.TrimSpace(string(be.buf[k+17 : k+2+e])))
		if err != nil {
			return nil, err
		}
		for got < j+4+l {
			n, err := be.conn.Read(be.buf[got:])
			if err != nil {
				return nil, err
			}
			got += n
		}
		return be.buf[:got], nil
	}
}

func (p *proxy) get(k int) (*backendConn, error) {
	l := &p.idle[k]
	l.mu.Lock()
	if n := len(l.conns); n > 0 {
		be := l.conns[n-1]
		l.conns = l.conns[:n-1]
		l.mu.Unlock()
		return be, nil
	}
	l.mu.Unlock()
	c, err := net.Dial("tcp", p.backends[k])
	if err != nil {
		return nil, err
	}
	return &backendConn{conn: c, buf: make([]byte, 64<<10)}, nil
}

func (p *proxy) put(k int, be *backendConn) {
	l := &p.idle[k]
	l.mu.Lock()
	l.conns = append(l.conns, be)
	l.mu.Unlock()
}

package forward

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkHTTPProxy is a request and its answer through the L7 proxy on
// keep-alive connections, from parallel clients, with the backend
// directly as the baseline, and the proxy with its per-request metrics on
// and off: the metrics must cost less than a tenth of the throughput.
//
//	go test -run '^$' -bench HTTPProxy -benchtime 3s -count 5 ./gslb/forward
func BenchmarkHTTPProxy(b *testing.B) {
	body := make([]byte, 512)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}))
	defer backend.Close()
	addr := backend.Listener.Addr().String()
	src := uncheckedPool("bench", "", addr) +
		listenerTOML("bench", "http", "", `[[listener.route]]
name = "all"
path_prefix = "/"
pool = "bench"`) +
		listenerTOML("nometrics", "http", "", `metrics = false
[[listener.route]]
name = "all"
path_prefix = "/"
pool = "bench"`)
	fw, _ := benchForwarder(b, src)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fw.Shutdown(ctx)
	}()
	targets := []struct{ name, url string }{
		{"direct", "http://" + addr + "/"},
		{"metrics_on", "http://" + fw.Addr("bench").String() + "/"},
		{"metrics_off", "http://" + fw.Addr("nometrics").String() + "/"},
	}
	for _, target := range targets {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(target.url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkFastPath is one keep-alive request and its 1 KiB answer through
// the fast path, from a raw client to a raw backend that allocate
// nothing, so that allocs/op are the proxy's; fast_path_metrics_off is
// the same with metrics = false, and fast_path_off with fast_path =
// false, through net/http.
//
//	go test -run '^$' -bench FastPath -benchmem ./gslb/forward
func BenchmarkFastPath(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // one answer per request head
				defer c.Close()
				buf := make([]byte, 8192)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						have = copy(buf, buf[i+4:have])
						if _, err := c.Write(answer); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	src := uncheckedPool("bench", "", ln.Addr().String()) +
		listenerTOML("bench", "http", "bench", "") +
		listenerTOML("nometrics", "http", "bench", "metrics = false") +
		listenerTOML("std", "http", "bench", "fast_path = false")
	fw, _ := benchForwarder(b, src)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fw.Shutdown(ctx)
	}()
	req := []byte("GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	for _, target := range []struct{ name, listener string }{{"fast_path", "bench"}, {"fast_path_metrics_off", "nometrics"}, {"fast_path_off", "std"}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(1024)
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", fw.Addr(target.listener).String())
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				buf := make([]byte, 8192)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if err := readAnswer(c, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// readAnswer reads one answer with a Content-Length body, allocating
// nothing.
func readAnswer(c net.Conn, buf []byte) error {
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return err
		}
		have += n
		i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
		if i < 0 {
			continue
		}
		j := bytes.Index(buf[:i], []byte("Content-Length: "))
		if j < 0 {
			return fmt.Errorf("no Content-Length in %q", buf[:i])
		}
		k := j + len("Content-Length: ")
		length := 0
		for ; buf[k] >= '0' && buf[k] <= '9'; k++ {
			length = length*10 + int(buf[k]-'0')
		}
		for have < i+4+length {
			n, err := c.Read(buf[have:])
			if err != nil {
				return err
			}
			have += n
		}
		return nil
	}
}

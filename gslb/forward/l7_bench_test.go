package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
	src := pool("bench", "[pool.check]\ntype = \"none\"", addr) +
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

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load test's record: failover from us-east to eu-west, load =
// "headroom", the forwarders' VIPs as its targets, a TTL of 1 s.
const (
	loadRecord = "load.example.test"
	vipUS      = "192.0.2.200"
	vipEU      = "198.51.100.200"
	// What each region's forwarder says its listener carries, in
	// requests per second: the load generator passes max on us-east.
	loadTarget, loadMax = 20.0, 40.0
)

// loadSubnets are the fixed client /24s the test asks for, as resolvers
// sending a Client Subnet.
var loadSubnets = func() []string {
	var out []string
	for i := range 16 {
		out = append(out, fmt.Sprintf("10.%d.%d.0/24", 17+i, 3*i))
	}
	return out
}()

// loadForwarder is a forwarder's configuration: an http listener in
// front of backends, reporting its load to the cluster as region's.
func loadForwarder(name, region, vip, seed string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[log]
format = "json"

[admin]
listen = "127.0.0.1:0"

[[pool]]
name = "web"
[pool.check]
type = "tcp"
interval = "200ms"
timeout = "150ms"
`)
	for _, a := range backends {
		fmt.Fprintf(&b, "[[pool.backend]]\naddress = %q\n", a)
	}
	fmt.Fprintf(&b, `
[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:0"
pool = "web"
target_load = %v
max_load = %v
vips = [%q]

[cluster]
name = %q
region = %q
bind = "127.0.0.1:0"
seeds = [%q]
key_file = "cluster.key"
`, loadTarget, loadMax, vip, name, region, seed)
	return b.String()
}

// startLoadDNS serves the quickstart with the load record, as the first
// member of a cluster.
func startLoadDNS(t *testing.T, keyFile string) (*instance, string) {
	t.Helper()
	gossip := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	inst := startQuickstartWith(t, func(config string) string {
		return config + fmt.Sprintf(`
[[record]]
name = %q
type = "A"
ttl = 1
policy = "failover"
select = "all"
load = "headroom"
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = %q
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = %q

[cluster]
name = "dns1"
bind = %q
seeds = [%q]
key_file = %q
`, loadRecord, vipUS, vipEU, gossip, gossip, keyFile)
	})
	return inst, gossip
}

// apiRegionLoad is the part of /api/v1/regions the test reads.
type apiRegionLoad struct {
	Name string `json:"name"`
	Load *struct {
		Reports []struct {
			Forwarder string  `json:"forwarder"`
			Load      float64 `json:"load"`
		} `json:"reports"`
		Pools map[string]struct {
			Share    float64 `json:"share"`
			Smoothed float64 `json:"smoothed"`
			Reason   string  `json:"reason"`
		} `json:"pools"`
	} `json:"load"`
}

// regionLoads reads /api/v1/regions, by region.
func regionLoads(t *testing.T, api string) map[string]apiRegionLoad {
	t.Helper()
	code, body := adminCall(t, "GET", api+"/api/v1/regions", "")
	if code != http.StatusOK {
		t.Fatalf("regions: %d %s", code, body)
	}
	var rs []apiRegionLoad
	if err := json.Unmarshal([]byte(body), &rs); err != nil {
		t.Fatal(err)
	}
	out := map[string]apiRegionLoad{}
	for _, r := range rs {
		out[r.Name] = r
	}
	return out
}

// answers asks for the load record from every subnet and returns the VIP
// each got.
func answers(t *testing.T, dns *instance) []string {
	t.Helper()
	out := make([]string, len(loadSubnets))
	for i, s := range loadSubnets {
		a := addresses(dns.dig(t, "+norec", "+subnet="+s, loadRecord, "A"))
		out[i] = strings.Join(a, ",")
	}
	return out
}

func count(vips []string, vip string) int {
	n := 0
	for _, v := range vips {
		if v == vip {
			n++
		}
	}
	return n
}

// loadGenerator sends GETs to addr from a few goroutines until stop is
// closed, at most limit requests and for at most maxTime.
func loadGenerator(addr string, limit int64, maxTime time.Duration, stop <-chan struct{}) (sent *atomic.Int64, done <-chan struct{}) {
	sent = new(atomic.Int64)
	finished := make(chan struct{})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(maxTime)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= limit && time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(20 * time.Millisecond) // bounded rate: at most 200 requests per second, five times max_load
			}
		}()
	}
	go func() { wg.Wait(); close(finished) }()
	return sent, finished
}

// TestLoadFeedback closes the loop with real processes: a DNS node and
// two forwarders (us-east and eu-west, each in front of real HTTP
// backends) in one gossip cluster. A bounded load generator drives
// us-east's forwarder past its max: within seconds most of a fixed set of
// client /24s are answered with eu-west, then none with us-east while it
// is past its max; when the load stops they come back; and no subnet
// flips more than once each way.
func TestLoadFeedback(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a DNS node and two forwarders")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	writeFile(t, keyFile, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))+"\n")
	dns, gossip := startLoadDNS(t, keyFile)
	api := "http://" + dns.waitLog(t, "admin API", 0).str("addr")

	start := func(name, region, vip string) string {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, "cluster.key"), readFile(t, keyFile))
		f := startForwardIn(t, d, loadForwarder(name, region, vip, gossip, webBackend(t, name+"-1"), webBackend(t, name+"-2")))
		for _, e := range f.logsWithMsg("listening") {
			if e.str("listener") == "web" {
				return e.str("addr")
			}
		}
		t.Fatalf("%s: no listener address in its logs", name)
		return ""
	}
	usAddr := start("fwd-us", "us-east", vipUS)
	start("fwd-eu", "eu-west", vipEU)

	const poolUS = "load.example.test./A/us-east"
	deadline := time.Now().Add(20 * time.Second)
	for {
		rl := regionLoads(t, api)
		if us, eu := rl["us-east"].Load, rl["eu-west"].Load; us != nil && eu != nil && len(us.Reports) == 1 && len(eu.Reports) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forwarders' reports did not arrive: %+v", rl)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := answers(t, dns); count(got, vipUS) != len(loadSubnets) {
		t.Fatalf("idle: answers %v, want every subnet on us-east", got)
	}

	// Load: us-east past its max.
	began := time.Now()
	history := make([][]string, len(loadSubnets))
	observe := func() []string {
		got := answers(t, dns)
		p := regionLoads(t, api)["us-east"].Load.Pools[poolUS]
		t.Logf("%5.1fs: us-east load %6.1f share %.2f; %2d of %d subnets on us-east", time.Since(began).Seconds(), p.Smoothed, p.Share, count(got, vipUS), len(got))
		for i, v := range got {
			history[i] = append(history[i], v)
		}
		return got
	}
	stop := make(chan struct{})
	sent, done := loadGenerator(usAddr, 10000, 45*time.Second, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	waitFor := func(what string, within time.Duration, cond func(got []string) bool) []string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := observe()
			if cond(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s: answers %v; regions %+v", what, within, got, regionLoads(t, api))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("a majority of subnets on eu-west", 20*time.Second, func(got []string) bool { return count(got, vipEU) > len(loadSubnets)/2 })
	t.Logf("a majority moved to eu-west %.1fs after the load began (%d requests sent)", time.Since(began).Seconds(), sent.Load())

	// Once us-east's smoothed load is past max, its share reaches 0: no
	// subnet is answered with it while eu-west has headroom.
	deadline = time.Now().Add(20 * time.Second)
	for {
		p := regionLoads(t, api)["us-east"].Load.Pools[poolUS]
		if p.Share == 0 {
			t.Logf("us-east's share reached 0 %.1fs after the load began: %+v", time.Since(began).Seconds(), p)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("us-east's share is %v (%s), not 0, though it carries %v", p.Share, p.Reason, p.Smoothed)
		}
		observe()
		time.Sleep(300 * time.Millisecond)
	}
	for range 3 {
		rl := regionLoads(t, api)
		us, eu := rl["us-east"].Load.Pools[poolUS], rl["eu-west"].Load.Reports[0]
		got := observe()
		after := regionLoads(t, api)["us-east"].Load.Pools[poolUS]
		if min(us.Smoothed, after.Smoothed) >= loadMax && eu.Load < loadTarget && count(got, vipUS) > 0 {
			t.Fatalf("us-east carries %v (max %v) and eu-west %v, yet %d subnets are answered with us-east: %v",
				us.Smoothed, loadMax, eu.Load, count(got, vipUS), got)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The load stops: the subnets come back.
	close(stop)
	<-done
	t.Logf("load stopped after %.1fs, %d requests", time.Since(began).Seconds(), min(sent.Load(), 10000))
	back := time.Now()
	waitFor("every subnet back on us-east", 30*time.Second, func(got []string) bool { return count(got, vipUS) == len(loadSubnets) })
	t.Logf("every subnet back on us-east %.1fs after the load stopped", time.Since(back).Seconds())

	// No oscillation: each subnet moved at most once each way.
	total := 0
	for i, h := range history {
		flips := 0
		for j := 1; j < len(h); j++ {
			if h[j] != h[j-1] {
				flips++
			}
		}
		total += flips
		if flips > 2 {
			t.Errorf("subnet %s flipped %d times: %v", loadSubnets[i], flips, h)
		}
	}
	t.Logf("%d flips over %d subnets and %d observations each", total, len(loadSubnets), len(history[0]))
}

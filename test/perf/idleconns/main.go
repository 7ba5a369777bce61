package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server address, host:port on loopback")
	pidList := flag.String("pids", "", "comma-separated pids whose resident sets are summed")
	n := flag.Int("n", 5000, "connections to open (at most 20000)")
	settle := flag.Duration("settle", 2*time.Second, "wait after the last connection before reading the resident set (at most 30s)")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil || !ap.Addr().IsLoopback() {
		fail("-addr must be a loopback host:port")
	}
	if *n < 1 || *n > 20000 || *settle < 0 || *settle > 30*time.Second {
		fail("-n must be 1..20000 and -settle at most 30s")
	}
	var pids []int
	for _, s := range strings.Split(*pidList, ",") {
		p, err := strconv.Atoi(s)
		if err != nil {
			fail("-pids: " + err.Error())
		}
		pids = append(pids, p)
	}
	before := rss(pids)
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 2 * time.Second}
	for i := range *n {
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idleconns: connection %d: %v\n", i+1, err)
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(*settle)
	after := rss(pids)
	if len(conns) == 0 {
		fail("no connection opened")
	}
	fmt.Printf("conns=%d rss_before_kib=%d rss_after_kib=%d kib_per_10k=%.0f\n",
		len(conns), before, after, float64(after-before)*10000/float64(len(conns)))
}

// rss sums VmRSS (KiB) of pids.
func rss(pids []int) int64 {
	var sum int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			fail(err.Error())
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				sum += kb
			}
		}
	}
	return sum
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "idleconns:", msg)
	os.Exit(2)
}

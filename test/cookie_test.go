package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var kdigCookie = regexp.MustCompile(`;; COOKIE: ([0-9A-F]+)`)

// TestCookies asks the quickstart with kdig +cookie, as an operator would:
// the reply carries the client cookie and a server cookie; a client that
// brings its server cookie back is not rate limited, where the same burst
// without it is.
func TestCookies(t *testing.T) {
	if _, err := exec.LookPath("kdig"); err != nil {
		t.Skip("kdig is not installed (.ci/run installs knot-dnsutils)")
	}
	s := startQuickstartWith(t, func(config string) string {
		return replaceOnce(t, config, "[server.rrl]\nenabled = false\n", "[server.rrl]\nenabled = true\nslip = 1\n")
	})
	kdig := func(args ...string) string { return runKdig(t, s, args...) }
	const client = "0123456789ABCDEF"
	m := kdigCookie.FindStringSubmatch(kdig("+cookie="+client, "www.example.test", "A"))
	if m == nil || len(m[1]) != 48 || !strings.HasPrefix(m[1], client) {
		t.Fatalf("no server cookie after the client cookie: %v", m)
	}
	burst := func(cookie string) (answered, truncated int) {
		args := []string{}
		for range 60 {
			args = append(args, "+cookie="+cookie, "www.example.test", "A")
		}
		out := kdig(args...)
		return strings.Count(out, "Flags: qr aa;"), strings.Count(out, "Flags: qr aa tc;")
	}
	if a, tc := burst(m[1]); a != 60 || tc != 0 {
		t.Errorf("with a valid server cookie: %d answered, %d truncated of 60", a, tc)
	}
	if a, tc := burst(client); tc == 0 || a+tc != 60 {
		t.Errorf("with the client cookie alone: %d answered, %d truncated of 60; want some truncated", a, tc)
	}
}

// TestCookiesAcrossServers: two servers sharing a secret file (as the
// nodes of one name server set do) each accept the cookies the other
// hands out: a client that learned its cookie from one is exempt from
// rate limiting at the other.
func TestCookiesAcrossServers(t *testing.T) {
	if _, err := exec.LookPath("kdig"); err != nil {
		t.Skip("kdig is not installed (.ci/run installs knot-dnsutils)")
	}
	secrets := "# rolled today\n" + "e5e973e5a6b2a43f48e7dc849e37bfcf\n"
	start := func() *instance {
		return startQuickstartWith(t, func(config string) string {
			config = replaceOnce(t, config, "[server.rrl]\nenabled = false\n", "[server.rrl]\nenabled = true\nslip = 1\n")
			return config + "\n[server.cookies]\nsecret_file = \"cookies.secret\"\n"
		}, func(dir string) { writeFile(t, dir+"/cookies.secret", secrets) })
	}
	a, b := start(), start()
	kdig := func(s *instance, args ...string) string { return runKdig(t, s, args...) }
	m := kdigCookie.FindStringSubmatch(kdig(a, "+cookie=0123456789ABCDEF", "www.example.test", "A"))
	if m == nil {
		t.Fatal("server a gave no cookie")
	}
	args := []string{}
	for range 60 {
		args = append(args, "+cookie="+m[1], "www.example.test", "A")
	}
	out := kdig(b, args...)
	if n := strings.Count(out, "Flags: qr aa;"); n != 60 {
		t.Errorf("server b answered %d of 60 queries carrying server a's cookie in full; it should accept a's cookie", n)
	}
}

// runKdig asks s with kdig over UDP, without recursion and without
// retrying a truncated reply over TCP.
func runKdig(t *testing.T, s *instance, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append([]string{"@127.0.0.1", "-p", strconv.Itoa(s.port), "+norec", "+notcp", "+ignore"}, args...)
	out, err := exec.CommandContext(ctx, "kdig", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

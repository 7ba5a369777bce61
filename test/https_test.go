package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestHTTPSRecord asks the quickstart's app.example.test for HTTPS, as a
// browser does beside A: each region's clients get their region's VIPs as
// ipv4hint, the alpn of the pool that answered, and the ECS scope their
// A answer has. A static HTTPS record in the zone carries its target's
// addresses in the additional section.
func TestHTTPSRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs meridian")
	}
	t.Parallel()
	ports := newHealthPorts(t, quickstartTargets)
	s := startGSLB(t, ports, func(config string) string {
		return replaceOnce(t, config, `"api 60 IN A 192.0.2.20",`,
			`"api 60 IN A 192.0.2.20", "svc 300 IN HTTPS 1 www.example.test. alpn=h2 port=8443",`)
	})
	waitChecked(t, s, ports)

	alpn := map[string]string{usEast.name: `"h2,h3"`, euWest.name: `"h2,h3"`, apNortheast.name: `"h2"`}
	for _, reg := range gslbRegions {
		t.Run(reg.name, func(t *testing.T) {
			r := s.dig(t, "+norec", "+subnet="+reg.subnet, "app.example.test", "HTTPS")
			want := fmt.Sprintf("app.example.test. %d IN HTTPS 1 . alpn=%s port=443 ipv4hint=%s", appTTL, alpn[reg.name], strings.Join(reg.vips, ","))
			if r.status != "NOERROR" || !r.flag("aa") || !slices.Equal(r.sections["ANSWER"], []string{want}) {
				t.Fatalf("got %s aa=%v %q, want %q\n%s", r.status, r.flag("aa"), r.sections["ANSWER"], want, r.out)
			}
			a, _ := askApp(t, s, reg)
			if got := clientSubnets(r); len(got) != 1 || got[0] != a.ecs {
				t.Errorf("HTTPS CLIENT-SUBNET %q, A's %q", got, a.ecs)
			}
			if wantECS := fmt.Sprintf("%s/%d", reg.echo, reg.scope); a.ecs != wantECS {
				t.Errorf("A CLIENT-SUBNET %q, want %q", a.ecs, wantECS)
			}
		})
	}

	r := s.dig(t, "+norec", "svc.example.test", "HTTPS")
	wantAnswer := []string{`svc.example.test. 300 IN HTTPS 1 www.example.test. alpn="h2" port=8443`}
	wantExtra := []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11", "www.example.test. 300 IN AAAA 2001:db8::10"}
	if !slices.Equal(r.sections["ANSWER"], wantAnswer) || !sameRecords(r.sections["ADDITIONAL"], wantExtra) {
		t.Errorf("static HTTPS: answer %q additional %q, want %q and %q\n%s", r.sections["ANSWER"], r.sections["ADDITIONAL"], wantAnswer, wantExtra, r.out)
	}
	noErrors(t, s)
}

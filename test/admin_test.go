package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const adminToken = "e2e-token-0123456789abcdef"

// adminCall sends one request to the admin API and returns the status.
func adminCall(t *testing.T, method, url, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAdminDrain drains eu-west through the real binary's admin API, sees
// eu-west's clients move, restarts the server and finds the drain still
// there, then restores it.
func TestAdminDrain(t *testing.T) {
	s := startQuickstartWith(t, func(config string) string {
		return replaceOnce(t, config, `listen = "127.0.0.1:0"`,
			"listen = \"127.0.0.1:0\"\ntoken_file = \"token\"\nstate_file = \"admin-state.json\"")
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken+"\n")
	})
	api := func() string { return "http://" + s.waitLog(t, "admin API", 0).str("addr") }
	euClient := func() []string {
		return s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24").sections["ANSWER"]
	}
	onlyEU := func(rrs []string) bool { return len(rrs) == 1 && strings.HasSuffix(rrs[0], " 198.51.100.100") }

	base := api()
	if !onlyEU(euClient()) {
		t.Fatalf("before any drain, eu-west's client got %v", euClient())
	}
	for _, bearer := range []string{"", "not-the-token-at-all"} {
		if code, body := adminCall(t, "POST", base+"/api/v1/regions/eu-west/drain", bearer); code != 401 {
			t.Fatalf("bearer %q: %d %s, want 401", bearer, code, body)
		}
	}
	if !onlyEU(euClient()) {
		t.Fatal("a refused drain changed the answers")
	}
	if code, body := adminCall(t, "POST", base+"/api/v1/regions/eu-west/drain", adminToken); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	if got := euClient(); onlyEU(got) || len(got) != 2 {
		t.Fatalf("eu-west drained, its client got %v, want us-east's two VIPs", got)
	}
	if s.waitLog(t, "audit: change", 0).str("region") != "eu-west" {
		t.Error("the change is not in the audit log")
	}

	// Restart: the drain comes back from the state file.
	s.signal(t, syscall.SIGTERM)
	if code := s.waitExit(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if err := s.start(t); err != nil {
		t.Fatalf("restart: %v", err)
	}
	base = api()
	if got := euClient(); onlyEU(got) {
		t.Fatalf("after a restart the drain is gone: %v", got)
	}
	_, body := adminCall(t, "GET", base+"/api/v1/regions", "")
	var regions []struct {
		Name    string
		Drained bool
	}
	if err := json.Unmarshal([]byte(body), &regions); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, r := range regions {
		if r.Drained != (r.Name == "eu-west") {
			t.Errorf("region %s drained=%v after restart", r.Name, r.Drained)
		}
	}
	if code, body := adminCall(t, "DELETE", base+"/api/v1/regions/eu-west/drain", adminToken); code != 200 {
		t.Fatalf("restore: %d %s", code, body)
	}
	if got := euClient(); !onlyEU(got) {
		t.Fatalf("restored, eu-west's client got %v", got)
	}
}

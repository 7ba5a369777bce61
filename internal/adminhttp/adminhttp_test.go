package adminhttp

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGuardAndDecode runs a real server with a guarded change whose body
// is decoded strictly, and asks it over HTTP.
func TestGuardAndDecode(t *testing.T) {
	var refused []string
	g := Guard{Token: []byte("0123456789abcdef"), Refused: func(_ *http.Request, reason string) { refused = append(refused, reason) }}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /x", g.Change(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Weight  *int   `json:"weight"`
			Comment string `json:"comment,omitempty"`
			Skip    int    `json:"-"`
		}
		if err := DecodeStrict(r.Body, &body); err != nil {
			Fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		WriteJSON(w, http.StatusOK, body)
	}))
	mux.HandleFunc("/", NotFound)
	srv := httptest.NewServer(NewServer(mux, slog.Default()).Handler)
	defer srv.Close()
	tests := []struct {
		token, body string
		code        int
		want        string
	}{
		{"0123456789abcdef", `{"weight": 3, "comment": "a"}`, 200, `"weight": 3`},
		{"0123456789abcdeX", `{"weight": 3}`, 401, "missing or wrong bearer token"},
		{"", `{"weight": 3}`, 401, "missing or wrong bearer token"},
		{"0123456789abcdef", `{"weight": 3, "Skip": 1}`, 400, `unknown key "Skip" (known: weight, comment)`},
		{"0123456789abcdef", `{"COMMENT": "a"}`, 400, `did you mean "comment"`},
		{"0123456789abcdef", `{"weight": 3}  `, 200, `"weight": 3`},
		{"0123456789abcdef", `{"weight": 3}]`, 400, "trailing data"},
		{"0123456789abcdef", `{"weight": 3`, 400, "not valid JSON"},
		{"0123456789abcdef", `{"weight": 1.5}`, 400, `key "weight": want a whole number, not a JSON number`},
		{"0123456789abcdef", `"weight"`, 400, "not a string"},
		{"0123456789abcdef", strings.Repeat(" ", MaxBody+1) + "{}", 400, "reading the body"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("PUT", srv.URL+"/x", strings.NewReader(tt.body))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var answer struct {
			Error string `json:"error"`
		}
		got := string(raw)
		if json.Unmarshal(raw, &answer) == nil && answer.Error != "" {
			got = answer.Error
		}
		if resp.StatusCode != tt.code || !strings.Contains(got, tt.want) {
			t.Errorf("%.40q: %d %s, want %d with %q", tt.body, resp.StatusCode, raw, tt.code, tt.want)
		}
	}
	if len(refused) != 2 || refused[0] != RefusedUnauthorized {
		t.Errorf("refusals %v, want two %q", refused, RefusedUnauthorized)
	}
}

// TestWarnOpenReads: the warning comes when reads are open on an address
// beyond loopback, and says what they expose.
func TestWarnOpenReads(t *testing.T) {
	tests := []struct {
		addr      string
		openReads bool
		warn      bool
	}{
		{"127.0.0.1:8053", true, false},
		{"[::1]:8053", true, false},
		{"0.0.0.0:8053", true, true},
		{"[::]:8053", true, true},
		{"192.0.2.10:8053", true, true},
		{"192.0.2.10:8053", false, false},
	}
	for _, tt := range tests {
		var buf strings.Builder
		a, err := net.ResolveTCPAddr("tcp", tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		WarnOpenReads(slog.New(slog.NewTextHandler(&buf, nil)), "admin API", a, tt.openReads, "the whole map")
		got := buf.String()
		warned := strings.Contains(got, "level=WARN") && strings.Contains(got, "open_reads = false") &&
			strings.Contains(got, `exposes="the whole map"`) && strings.Contains(got, "addr="+tt.addr)
		if warned != tt.warn || (!tt.warn && got != "") {
			t.Errorf("%s open_reads %v: log %q, want a warning: %v", tt.addr, tt.openReads, got, tt.warn)
		}
	}
}

// TestAudit: a change's audit line says what, then who and how.
func TestAudit(t *testing.T) {
	var buf strings.Builder
	r := httptest.NewRequest("PUT", "/api/v1/x", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	Audit(slog.New(slog.NewTextHandler(&buf, nil)), r, "backend weight", "pool", "web", "weight", 3)
	if want := `level=INFO msg="audit: backend weight" pool=web weight=3 from=192.0.2.7:5555 method=PUT`; !strings.Contains(buf.String(), want) {
		t.Errorf("audit line %q, want %q", buf.String(), want)
	}
}

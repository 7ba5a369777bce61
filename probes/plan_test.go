package probes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// planBeforeTags is a plan as DNS nodes wrote it before CheckSpec had
// JSON tags (the Go field names), from the encoder of that time.
const planBeforeTags = `{"version":1,"checks":[{"Target":"eu-west/192.0.2.10","Type":"https","Addr":"192.0.2.10:443","Source":"","Method":"GET","Path":"/health","Host":"app.example.test","Expect":[200,204],"Body":"ok","BodyRegexp":"v\\d+","CAFile":"","ServerName":"app.example.test","CertFile":"","KeyFile":"","CAPEM":"Y2E=","CertPEM":"Y2VydA==","KeyPEM":"a2V5","QueryName":"","QueryType":0,"Rcode":0,"Answer":"","Interval":5000000000,"Timeout":2000000000,"Rise":2,"Fall":3},{"Target":"us-east/192.0.2.20","Type":"dns","Addr":"192.0.2.20:53","Source":"","Method":"","Path":"","Host":"","Expect":null,"Body":"","BodyRegexp":"","CAFile":"","ServerName":"","CertFile":"","KeyFile":"","CAPEM":null,"CertPEM":null,"KeyPEM":null,"QueryName":"app.example.test.","QueryType":1,"Rcode":3,"Answer":"192.0.2.1","Interval":1000000000,"Timeout":0,"Rise":0,"Fall":0}]}`

var planSpecs = []CheckSpec{
	{Target: "eu-west/192.0.2.10", Type: "https", Addr: "192.0.2.10:443", Method: "GET", Path: "/health", Host: "app.example.test",
		Expect: []int{200, 204}, Body: "ok", BodyRegexp: `v\d+`, ServerName: "app.example.test",
		CAPEM: []byte("ca"), CertPEM: []byte("cert"), KeyPEM: []byte("key"),
		Interval: 5 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3},
	{Target: "us-east/192.0.2.20", Type: "dns", Addr: "192.0.2.20:53", QueryName: "app.example.test.", QueryType: 1, Rcode: 3, Answer: "192.0.2.1", Interval: time.Second},
}

// legacySpec is CheckSpec as agents before the tags decode it.
type legacySpec struct {
	Target, Type, Addr, Source, Method, Path, Host string
	Expect                                         []int
	Body, BodyRegexp, CAFile, ServerName           string
	CertFile, KeyFile                              string
	CAPEM, CertPEM, KeyPEM                         []byte
	QueryName                                      string
	QueryType                                      uint16
	Rcode                                          int
	Answer                                         string
	Interval, Timeout                              time.Duration
	Rise, Fall                                     int
}

// TestPlanWireCompatible: the plans of nodes before the JSON tags decode
// to the same checks, and agents before them read the plans of today.
func TestPlanWireCompatible(t *testing.T) {
	got, err := DecodePlan([]byte(planBeforeTags))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, planSpecs) {
		t.Errorf("plan of before the tags:\n got %+v\nwant %+v", got, planSpecs)
	}
	body, err := EncodePlan(planSpecs)
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		Version int
		Checks  []legacySpec
	}
	if err := json.Unmarshal(body, &old); err != nil {
		t.Fatal(err)
	}
	var want struct {
		Version int
		Checks  []legacySpec
	}
	if err := json.Unmarshal([]byte(planBeforeTags), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(old, want) {
		t.Errorf("today's plan as an agent before the tags reads it:\n got %+v\nwant %+v\n(%s)", old, want, body)
	}
}

// TestEncodePlanCarriesFiles: files travel as contents, a source address
// not at all.
func TestEncodePlanCarriesFiles(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	body, err := EncodePlan([]CheckSpec{{Target: "eu/192.0.2.1", Type: "https", CAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePlan(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CAFile != "" || string(got[0].CAPEM) != "pem" || got[0].Source.IsValid() {
		t.Errorf("decoded %+v", got)
	}
	if _, err := EncodePlan([]CheckSpec{{Target: "eu/192.0.2.1", KeyFile: ca + ".missing"}}); err == nil {
		t.Error("a missing key file encoded")
	}
	if _, err := DecodePlan([]byte(`{"version":2,"checks":[]}`)); err == nil {
		t.Error("a plan of a newer version read")
	}
}

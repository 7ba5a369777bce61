package health

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestTargetID(t *testing.T) {
	id := NewTargetID("eu-west", netip.MustParseAddr("2001:db8::1"))
	if id != "eu-west/2001:db8::1" || id.Region() != "eu-west" || id.String() != string(id) {
		t.Errorf("%q: region %q", id, id.Region())
	}
	if r := TargetID("no-slash").Region(); r != "" {
		t.Errorf("region of an ID without one: %q", r)
	}
}

// TestStoreSnapshots: a published snapshot never changes; a batch is one
// publish; a publish that changes only times keeps the states' version.
func TestStoreSnapshots(t *testing.T) {
	s := NewStore()
	published := 0
	s.OnPublish(func() { published++ })
	before := s.Snapshot()
	if !s.Set("eu/192.0.2.1", Up) || s.Set("eu/192.0.2.1", Up) {
		t.Fatal("Set reports a change only when the state changes")
	}
	if s.Set("eu/192.0.2.9", Unknown) {
		t.Error("Unknown over nothing is no change")
	}
	if before.State("eu/192.0.2.1") != Unknown {
		t.Fatal("an older snapshot changed")
	}
	up := s.Snapshot()
	if up.State("eu/192.0.2.1") != Up || published != 1 {
		t.Fatalf("state %s after %d publishes", up.State("eu/192.0.2.1"), published)
	}
	s.Update(func(tx *Tx) {
		tx.SetRTT("eu", 5*time.Millisecond)
		tx.SetRTT("us", 90*time.Millisecond)
		tx.SetVantageRTTs([]VantageRTT{
			{Name: "fra", Lat: 50.1, Lon: 8.7, RTT: map[string]time.Duration{"eu": time.Millisecond}},
			{Name: "nowhere", RTT: map[string]time.Duration{"eu": time.Millisecond}},
			{Name: "idle", Lat: 1, Lon: 1},
		})
	})
	timed := s.Snapshot()
	if published != 2 || timed.Version() != up.Version()+1 || timed.StatesVersion() != up.StatesVersion() {
		t.Errorf("one batch of times: %d publishes, versions %d/%d after %d/%d", published, timed.Version(), timed.StatesVersion(), up.Version(), up.StatesVersion())
	}
	if d, ok := timed.RTT("eu"); !ok || d != 5*time.Millisecond {
		t.Errorf("RTT eu %v %v", d, ok)
	}
	if _, ok := up.RTT("eu"); ok {
		t.Error("an older snapshot has the new times")
	}
	if v := timed.Vantages(); len(v) != 1 || v[0].Name != "fra" {
		t.Errorf("vantages kept: %+v, want fra alone", v)
	}
	s.Update(func(*Tx) {})
	if published != 2 {
		t.Error("a batch that changed nothing was published")
	}
	s.Set("eu/192.0.2.1", Down)
	if st := s.Snapshot(); st.StatesVersion() != st.Version() {
		t.Errorf("states version %d after a state change at %d", st.StatesVersion(), st.Version())
	}
}

// TestStoreReadersDuringWrites: readers load snapshots while writers
// publish (run with -race).
func TestStoreReadersDuringWrites(t *testing.T) {
	s := NewStore()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 200 {
				s.Update(func(tx *Tx) {
					tx.Set(TargetID([]string{"a/1", "b/1"}[w]), State(1+i%2))
					tx.SetRTT("a", time.Duration(i))
				})
			}
		})
	}
	wg.Go(func() {
		for range 400 {
			snap := s.Snapshot()
			_ = snap.State("a/1")
			_, _ = snap.RTT("a")
		}
	})
	wg.Wait()
	if s.Snapshot().Version() == 0 {
		t.Fatal("nothing published")
	}
}

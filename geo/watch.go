package geo

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Format names the layout of a database file.
type Format string

// The database layouts this package reads.
const (
	FormatMaxMind Format = "maxmind"        // GeoIP2/GeoLite2 City or Country: OpenMaxMind
	FormatFlat    Format = "ip-location-db" // ip-location-db flat DB-IP lite files: OpenFlat
)

// Open opens a file of this format. Its method value is an OpenFunc:
// NewWatcher(path, geo.FormatMaxMind.Open, opts).
func (f Format) Open(path string) (Locator, error) {
	switch f {
	case FormatMaxMind:
		m, err := OpenMaxMind(path)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return m, nil
	case FormatFlat:
		fl, err := OpenFlat(path)
		if err != nil {
			return nil, err
		}
		return fl, nil
	default:
		return nil, fmt.Errorf("%s: unknown database format %q (want %q or %q)", path, string(f), FormatMaxMind, FormatFlat)
	}
}

// OpenFunc opens a database file. Its errors should name the file.
type OpenFunc func(path string) (Locator, error)

// DefaultPollInterval is how often a caller should look at a Watcher's
// file (Check) when the configuration does not say. Databases change
// weekly at most, and a stat a minute costs nothing.
const DefaultPollInterval = time.Minute

// WatcherOptions tune a Watcher. The zero value is usable.
type WatcherOptions struct {
	// Logger receives one line per reload, success or failure; nil
	// discards them.
	Logger *slog.Logger
	// Format is the file's format, for Watcher.Format: a caller that
	// reuses data across configurations compares it.
	Format Format
	// Previous, when it serves the same path, is a watcher of an earlier
	// configuration: the new one starts from its data instead of reading
	// the file again (a reload re-reads only what changed on disk; call
	// Check to look at the file now).
	Previous *Watcher
	// OnReload, when set, is called after every reload attempt with its
	// error (nil on success), for metrics or tests. It runs on the
	// polling goroutine, so it should return quickly.
	OnReload func(path string, err error)
	// Accept, when set, vets each file Check reopens before it serves: an
	// error refuses it, and the previous data goes on serving, as for a
	// file that fails to open. A configuration uses it to refuse a
	// database that lacks what its records need (a Country file over a
	// City one under proximity). The file NewWatcher opens is not passed
	// to it: the caller vets that one, with the configuration at hand to
	// say where the problem is.
	Accept func(Locator) error
}

// Watcher serves a database file and reopens it when the file changes, so
// a new database takes effect without a restart.
//
// It polls the file's inode, size and modification time rather than using
// inotify (fsnotify): geoipupdate and most deploy tools replace the file by
// renaming a new one over it, which drops an inotify watch on the file
// itself, and a directory watch must then filter events and still misses
// changes on network file systems and through Kubernetes' symlink swaps of
// mounted volumes. A stat per interval sees all of those, and a database
// that changes weekly does not need sub-second notice.
//
// A file that fails to open leaves the previous data serving; the failure
// is logged and passed to OnReload once, and the file is tried again when
// it changes again. The retired Locator is not closed: lookups may still be
// running on it, and the locators of this package hold no file or mapping
// (the database is read into memory), so the garbage collector reclaims it
// after the last of them returns.
type Watcher struct {
	path   string
	open   OpenFunc
	opts   WatcherOptions
	logger *slog.Logger

	cur atomic.Pointer[current]

	mu         sync.Mutex // serializes Check; guards the fields below
	stamp      os.FileInfo
	statFailed bool
}

// current boxes the Locator so it can sit behind an atomic.Pointer.
type current struct{ loc Locator }

var _ Locator = (*Watcher)(nil)

// NewWatcher opens path with open and returns a Watcher serving it. Call
// Check every so often to follow changes to the file: a server looks at
// all its databases in one loop, so that one index follows them all. An error opening the file now is
// returned, not logged: without a first database there is nothing to serve.
func NewWatcher(path string, open OpenFunc, opts WatcherOptions) (*Watcher, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &Watcher{path: path, open: open, opts: opts, logger: logger}
	if prev := opts.Previous; prev != nil && prev.path == path {
		prev.mu.Lock()
		w.stamp, w.statFailed = prev.stamp, prev.statFailed
		prev.mu.Unlock()
		w.cur.Store(prev.cur.Load())
		w.opts.Previous = nil // not kept alive by the new one
		return w, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	loc, err := open(path)
	if err != nil {
		return nil, err
	}
	w.stamp = fi
	w.cur.Store(&current{loc})
	return w, nil
}

// Locate answers from the database currently loaded.
func (w *Watcher) Locate(addr netip.Addr) (Location, bool) {
	return w.cur.Load().loc.Locate(addr)
}

// Path returns the file the watcher serves.
func (w *Watcher) Path() string { return w.path }

// Format returns WatcherOptions.Format.
func (w *Watcher) Format() Format { return w.opts.Format }

// Current returns the Locator currently serving, to read its Info.
func (w *Watcher) Current() Locator {
	return w.cur.Load().loc
}

// Check looks at the file once and reopens it if it changed since the last
// attempt. It reports whether new data is now serving and the error of a
// failed attempt; both are also logged and passed to OnReload.
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	fi, err := os.Stat(w.path)
	if err != nil {
		// A vanished file is reported once, not every interval.
		if w.statFailed {
			return false, nil
		}
		w.statFailed = true
		w.report(err)
		return false, err
	}
	w.statFailed = false
	if sameFile(w.stamp, fi) {
		return false, nil
	}
	// The stamp is taken before the file is read: if the file is replaced
	// in between, the next check sees a newer stamp and reads it again,
	// whereas a stamp taken after could hide the newer file for good.
	w.stamp = fi
	loc, err := w.open(w.path)
	if err == nil && w.opts.Accept != nil {
		if err = w.opts.Accept(loc); err != nil {
			err = fmt.Errorf("%s: refused: %w", w.path, err)
		}
	}
	if err != nil {
		w.report(err)
		return false, err
	}
	w.cur.Store(&current{loc})
	w.report(nil)
	return true, nil
}

func (w *Watcher) report(err error) {
	if err != nil {
		w.logger.Error("geo database reload failed; still serving the previous data", "file", w.path, "err", err)
	} else {
		attrs := []any{"file", w.path}
		if d, ok := w.cur.Load().loc.(interface{ Info() Info }); ok {
			info := d.Info()
			attrs = append(attrs, "type", info.Type, "built", info.Built.Format(time.DateOnly),
				"networks", info.Networks, "places", info.Places)
		}
		w.logger.Info("geo database reloaded", attrs...)
	}
	if w.opts.OnReload != nil {
		w.opts.OnReload(w.path, err)
	}
}

// sameFile reports whether two stats are of the same, unchanged file: same
// inode (a rename over the path makes a new one), size and modification
// time (a rewrite in place changes those).
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

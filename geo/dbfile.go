package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/sys/unix"
)

// dbFile is an open MMDB file: lookups read a shared, read-only mapping of
// it, so the process holds only the pages its lookups touch (the tree
// nodes on their paths and the records they decode), not the file. A walk
// over every network (scan) reads through a second mapping that is
// dropped when the walk ends, so the walk's pages do not stay in the
// process either.
//
// The file stays open for as long as the dbFile is reachable: a database
// replaced by renaming a new file over the old one (as geoipupdate does)
// keeps serving lookups in flight from the old inode, and the mapping and
// the descriptor are released once no Index holds the dbFile. A file
// rewritten or truncated in place (cp over it) changes under the mapping,
// and reads past its new end fault: every read of the mapping turns such
// a fault into an error (runtime/debug.SetPanicOnFault), so a lookup then
// misses and a walk fails, until the watcher has loaded the new file. The
// answers of geo and proximity records never read the file: their
// partitions are in memory. Replace files by renaming to avoid the gap.
type dbFile struct {
	path   string
	file   *os.File
	mm     *maxminddb.Reader // over the lookup mapping
	decode func(maxminddb.Result) (Location, error)
	info   Info
}

// openDB maps path and vets it with check before anything else reads it.
func openDB(path string, decode func(maxminddb.Result) (Location, error), check func(*maxminddb.Reader) error) (*dbFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // names the file already
	}
	data, err := mapFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	mm, err := maxminddb.OpenBytes(data)
	if err != nil {
		unix.Munmap(data)
		f.Close()
		return nil, fmt.Errorf("%s: not a readable MaxMind DB: %w", path, err)
	}
	db := &dbFile{path: path, file: f, mm: mm, decode: decode}
	md := mm.Metadata
	db.info = Info{Type: md.DatabaseType, Built: md.BuildTime().UTC(), IPVersion: md.IPVersion}
	runtime.AddCleanup(db, func(r release) { r.close() }, release{f, data})
	if check != nil {
		if err := check(mm); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	// A first walk proves every record decodes: a broken file is refused
	// now, with the previous data serving, not found out by clients.
	stats, err := db.count()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db.info.Networks, db.info.Places, db.info.Coordinates = stats.networks, stats.places, stats.coords
	return db, nil
}

// release is what a dbFile frees once unreachable.
type release struct {
	f    *os.File
	data []byte
}

func (r release) close() {
	_ = unix.Munmap(r.data)
	_ = r.f.Close()
}

func mapFile(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("the file is empty")
	}
	if int64(int(fi.Size())) != fi.Size() {
		return nil, fmt.Errorf("the file is too large")
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the file: %w", err)
	}
	return data, nil
}

// errFault is a read of a mapping whose file shrank under it.
var errFault = errors.New("the file changed while it was read (rewritten in place?)")

// guard turns a fault reading the mapping into errFault in *err. Use as
// `defer guard(&err)()` in the goroutine that reads.
func guard(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			// A memory fault's panic value reports its address.
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				*err = errFault
				return
			}
			panic(r)
		}
	}
}

// locate looks addr up in the file; Network is the file's network.
func (db *dbFile) locate(addr netip.Addr) (loc Location, ok bool) {
	var fault error
	defer guard(&fault)()
	return db.lookup(addr)
}

func (db *dbFile) lookup(addr netip.Addr) (Location, bool) {
	addr = normalize(addr)
	if !addr.IsValid() || (db.info.IPVersion == 4 && addr.Is6()) {
		// An IPv4-only file answers IPv6 lookups with an error, not a miss.
		return Location{}, false
	}
	res := db.mm.Lookup(addr)
	if !res.Found() {
		return Location{}, false
	}
	loc, err := db.decode(res)
	if err != nil || !loc.known() {
		// The file was whole when it was opened; a record it cannot
		// decode now has nobody on the query path to be reported to.
		return Location{}, false
	}
	loc.Network = res.Prefix()
	return loc, true
}

// scan walks every network of the file with data, in address order (IPv4
// first), on a mapping of its own that is dropped afterwards, after the
// optional end function. fn gets each network's record offset: networks
// sharing a record share its offset.
func (db *dbFile) scan(fn func(p netip.Prefix, offset uintptr, res maxminddb.Result) error, end ...func() error) (err error) {
	defer guard(&err)()
	data, err := mapFile(db.file)
	if err != nil {
		return fmt.Errorf("%s: %w", db.path, err)
	}
	defer unix.Munmap(data)
	mm, err := maxminddb.OpenBytes(data)
	if err != nil {
		return fmt.Errorf("%s: %w", db.path, err)
	}
	for res := range mm.Networks() {
		if err := res.Err(); err != nil {
			return fmt.Errorf("%s: reading networks: %w", db.path, err)
		}
		if err := fn(res.Prefix(), res.Offset(), res); err != nil {
			return fmt.Errorf("%s: %w", db.path, err)
		}
	}
	for _, f := range end {
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", db.path, err)
		}
	}
	return nil
}

type dbStats struct{ networks, places, coords int }

// count walks the file once, decoding each distinct record.
func (db *dbFile) count() (dbStats, error) {
	var st dbStats
	seen := map[uintptr]bool{}
	err := db.scan(func(p netip.Prefix, off uintptr, res maxminddb.Result) error {
		st.networks++
		if seen[off] {
			return nil
		}
		seen[off] = true
		loc, err := db.decode(res)
		if err != nil {
			return fmt.Errorf("record of %s: %w", p, err)
		}
		if loc.known() {
			st.places++
		}
		if loc.HasCoords {
			st.coords++
		}
		return nil
	})
	return st, err
}

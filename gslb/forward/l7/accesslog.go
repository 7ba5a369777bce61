package l7

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
)

// accessLog is the JSON access log of the http listeners: a line per
// request (or per sampled request) with the route that matched, the pool
// and backend that answered, and what it cost.
type accessLog struct {
	path   string
	out    io.WriteCloser // nil for stdout and stderr, which are not ours to close
	log    *slog.Logger
	sample float64
}

// openAccessLog opens the access log cfg names; nil when there is none.
// The file of the log in force is reused when the path is the same.
func openAccessLog(cfg *config.Forward, cur *accessLog) (*accessLog, error) {
	ac := cfg.AccessLog
	if ac.Path == "" {
		return nil, nil
	}
	al := &accessLog{path: ac.Path, sample: *ac.Sample}
	var w io.Writer
	switch {
	case ac.Path == "stdout":
		w = os.Stdout
	case ac.Path == "stderr":
		w = os.Stderr
	case cur != nil && cur.path == ac.Path:
		al.out = cur.out
		w = cur.out
	default:
		f, err := os.OpenFile(cfg.ResolvePath(ac.Path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, cfg.Errorf("access_log.path", "%v", err)
		}
		al.out, w = f, f
	}
	al.log = slog.New(slog.NewJSONHandler(w, nil))
	return al, nil
}

// close closes the log's file, unless next still writes to it.
func (al *accessLog) close(next *accessLog) {
	if al == nil || al.out == nil || (next != nil && next.out == al.out) {
		return
	}
	al.out.Close()
}

func (al *accessLog) sampled() bool {
	return al.sample >= 1 || (al.sample > 0 && rand.Float64() < al.sample)
}

// requestLine is what the access log says of a request.
type requestLine struct{ method, host, uri, proto, userAgent string }

func (al *accessLog) write(listener string, rs *reqState, r requestLine, status int, size int64, elapsed time.Duration) {
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("listener", listener),
		slog.String("route", rs.route.name),
		slog.String("client", rs.client.String()),
		slog.String("peer", rs.peer.String()),
		slog.String("method", r.method),
		slog.String("host", r.host),
		slog.String("uri", r.uri),
		slog.String("proto", r.proto),
		slog.Int("status", status),
		slog.Int64("bytes", size),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	)
	if rs.pool != nil {
		attrs = append(attrs, slog.String("pool", rs.pool.Name), slog.Bool("canary", rs.canary), slog.Int("tries", rs.tries))
	}
	if rs.backend != nil {
		attrs = append(attrs, slog.String("backend", rs.backend.Addr))
	}
	if rs.pin != nil {
		attrs = append(attrs, slog.String("sticky", rs.pin.Addr))
	}
	if rs.path != "" {
		attrs = append(attrs, slog.String("upstream_path", rs.path))
	}
	if rs.err != "" {
		attrs = append(attrs, slog.String("error", rs.err))
	}
	if ua := r.userAgent; ua != "" {
		attrs = append(attrs, slog.String("user_agent", ua))
	}
	al.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// String describes the log, for the reload's log line.
func (al *accessLog) String() string {
	if al == nil {
		return "off"
	}
	return fmt.Sprintf("%s (sample %g)", al.path, al.sample)
}

package adminhttp

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/meridian-gslb/meridian/internal/loopback"
)

// MaxBody is the most a request body may hold: the APIs' bodies are a
// key or two.
const MaxBody = 64 << 10

// The listener's limits: a client that is slow to send its headers or
// body, or to read the answer, is cut off.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	WriteTimeout      = 10 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
)

// NewServer is an http.Server for h with the admin APIs' limits. The
// server's own complaints (TLS handshakes, bad requests) go to log at
// debug, so a JSON log stays JSON lines.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Handler:           http.MaxBytesHandler(h, MaxBody),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// WarnOpenReads logs, at start, what open reads expose when the API can
// be reached from other hosts: anyone who can connect reads it all.
func WarnOpenReads(log *slog.Logger, api string, addr net.Addr, openReads bool, exposes string) {
	if !openReads || loopback.Beyond(addr.String()) == "" {
		return
	}
	log.Warn(api+" reads are open to anyone who can reach it: set admin.open_reads = false to require the token",
		"addr", addr.String(), "exposes", exposes)
}

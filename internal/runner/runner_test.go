package runner

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// harness runs a loop whose reloads fail while fail is set.
type harness struct {
	r       *Runner
	log     testkit.Buffer
	loop    Loop
	reloads chan struct{}
	mu      sync.Mutex
	fail    error
	done    chan error
	cancel  context.CancelFunc
}

func start(t *testing.T, hup bool, failed chan error) *harness {
	t.Helper()
	h := &harness{r: New(hup), reloads: make(chan struct{}, 10), done: make(chan error, 1)}
	t.Cleanup(h.r.Close)
	h.loop = Loop{
		Reload: func() ([]any, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.reloads <- struct{}{}
			return []any{"n", 1}, h.fail
		},
		Failed: failed, StopMsg: "listener stopped",
		Shutdown: func() error { return nil },
		Reloads:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_reloads_total"}, []string{"result"}),
		FailMsg:  "reload failed; still serving", Log: NewLogger(&h.log, "json", new(slog.LevelVar)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.r.Run(ctx, h.loop) }()
	return h
}

func (h *harness) setFail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = err
}

func TestRequestReloads(t *testing.T) {
	h := start(t, false, nil)
	if err := h.r.Request(); err != nil {
		t.Fatalf("Request: %v", err)
	}
	bad := errors.New("bad config")
	h.setFail(bad)
	if err := h.r.Request(); !errors.Is(err, bad) {
		t.Fatalf("Request = %v, want %v", err, bad)
	}
	if got := count(t, h.loop.Reloads.WithLabelValues("success")); got != 1 {
		t.Errorf("successes = %v, want 1", got)
	}
	if got := count(t, h.loop.Reloads.WithLabelValues("failure")); got != 1 {
		t.Errorf("failures = %v, want 1", got)
	}
	logs := h.log.String()
	if !strings.Contains(logs, `"msg":"reloaded","n":1`) || !strings.Contains(logs, `"msg":"reload failed; still serving","err":"bad config"`) {
		t.Errorf("logs:\n%s", logs)
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := h.r.Request(); !errors.Is(err, ErrStopped) {
		t.Errorf("Request after Run = %v, want ErrStopped", err)
	}
}

func TestSIGHUPReloads(t *testing.T) {
	h := start(t, true, nil)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.reloads:
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after SIGHUP")
	}
	h.cancel()
	<-h.done
}

func TestFailedStopsTheLoop(t *testing.T) {
	failed := make(chan error, 1)
	h := start(t, false, failed)
	failed <- errors.New("socket closed")
	err := <-h.done
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "socket closed") {
		t.Fatalf("Run = %v, want ErrFailed with the cause", err)
	}
	if !strings.Contains(h.log.String(), `"msg":"listener stopped"`) {
		t.Errorf("logs:\n%s", h.log.String())
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "WARN": slog.LevelWarn, "": slog.LevelInfo, "loud": slog.LevelInfo} {
		if got := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

// count reads a counter.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(mfs))
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

package l7

import (
	"net"
	"testing"
	"time"
)

// A socket deadline left early, as the coarse deadlines leave it, does not
// end a read: the data that comes before the deadline in force is read.
func TestTimedConnEarlyDeadlineRead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tc := &timedConn{Conn: a}
	now := time.Now()
	tc.exactRead(now.Add(20 * time.Millisecond)) // the socket's, early
	tc.rd.want = now.Add(10 * time.Second)
	go func() {
		time.Sleep(100 * time.Millisecond) // past the socket's deadline
		b.Write([]byte("late"))
	}()
	buf := make([]byte, 8)
	n, err := tc.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read %q, %v; want the data sent before the deadline in force", buf[:n], err)
	}
}

// The deadline in force still ends a read, and an abort ends it whatever
// the deadline.
func TestTimedConnDeadlineFires(t *testing.T) {
	for _, abort := range []bool{false, true} {
		a, b := net.Pipe()
		tc := &timedConn{Conn: a}
		want := 200 * time.Millisecond
		if abort {
			want = time.Hour
		}
		tc.exactRead(time.Now().Add(20 * time.Millisecond))
		tc.setRead(time.Now().Add(want), want)
		if abort {
			go tc.abort()
		}
		_, err := tc.Read(make([]byte, 8))
		if !timedOut(err) {
			t.Errorf("abort %v: read ended with %v, want a timeout", abort, err)
		}
		a.Close()
		b.Close()
	}
}

// A write whose deadline fires early writes the rest; one whose deadline
// is exact (TLS) is not tried again.
func TestTimedConnWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	tc := &timedConn{Conn: a}
	tc.wr = deadline{set: time.Now().Add(20 * time.Millisecond)}
	_ = a.SetWriteDeadline(tc.wr.set)
	tc.setWrite(time.Now().Add(10*time.Second), 10*time.Second, true)
	go func() {
		time.Sleep(100 * time.Millisecond)
		buf := make([]byte, 16)
		for got := 0; got < 10; {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			got += n
		}
	}()
	if n, err := tc.Write([]byte("0123456789")); n != 10 || err != nil {
		t.Fatalf("wrote %d, %v; want all 10 bytes", n, err)
	}
	tc.setWrite(time.Now().Add(50*time.Millisecond), 50*time.Millisecond, false)
	if _, err := tc.Write([]byte("unread")); !timedOut(err) {
		t.Fatalf("write ended with %v, want a timeout", err)
	}
}

// The socket's deadline stays while it falls short of the one in force by
// less than the slack, and is never later than it.
func TestDeadlineKeep(t *testing.T) {
	now := time.Now()
	d := deadline{set: now.Add(10 * time.Second)}
	for _, tt := range []struct {
		name  string
		want  time.Time
		slack bool
		keep  bool
	}{
		{"within the slack", now.Add(10*time.Second + time.Second), true, true},
		{"past the slack", now.Add(12 * time.Second), true, false},
		{"earlier than the socket's", now.Add(9 * time.Second), true, false},
		{"none", time.Time{}, true, true},
		{"within the slack, exact", now.Add(10*time.Second + time.Second), false, false},
		{"the same, exact", now.Add(10 * time.Second), false, true},
		{"none, exact", time.Time{}, false, false},
	} {
		if got := d.keep(tt.want, 10*time.Second, tt.slack); got != tt.keep {
			t.Errorf("%s: keep = %v, want %v", tt.name, got, tt.keep)
		}
	}
}

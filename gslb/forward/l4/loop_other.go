//go:build !linux

package l4

import "sync/atomic"

// loops is empty where the event loop of loop_linux.go is not built:
// sessions keep a goroutine per direction.
type loops struct{}

type loopConn struct{}

func (c *loopConn) abort() {}

func (s *tcpSession) handOff(*Env, *atomic.Uint64, *atomic.Uint64, func()) bool { return false }

// wait returns at once: there are no loops.
func (ls *loops) wait() {}

// Package epoll gives TCP connections whose reads and writes wait on an
// epoll loop of the package's own instead of Go's netpoller, so that a
// read is made only when the socket has something to read.
//
// Go's net.Conn tries every read first and waits when it finds the socket
// empty (EAGAIN). A proxy reads each socket right after writing to it (the
// backend's answer after the request, the client's next request after the
// answer), so on a keep-alive HTTP exchange two of every six system calls
// find nothing: the netpoller learns of readiness but does not keep it for
// the next read. Here each Conn is registered edge-triggered with one of
// GOMAXPROCS loops, which counts every readiness event per direction and
// wakes the goroutine waiting for it; a read that came back short, with
// no event since it began, marks the socket empty, and the next read waits
// for an event before it asks the kernel. The peer's FIN, a reset or an
// error marks the connection readable for good, so that end of file is
// never missed.
//
// Conn implements net.Conn with deadlines (a timer per direction, moved
// only when the deadline is), Close that waits for reads and writes in
// progress before the descriptor is closed (so that a number reused by a
// new socket is never read), and CloseWrite. Pollers.Wrap moves an
// accepted or dialled *net.TCPConn onto a loop; elsewhere than on Linux,
// or when no loop runs, it returns the connection as it is.
package epoll

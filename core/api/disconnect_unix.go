//go:build unix

package api

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the client has closed its side of conn, by
// peeking at the socket without consuming anything (fasthttp gives handlers
// no disconnect signal).
func peerClosed(conn net.Conn) bool {
	for {
		u, ok := conn.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		conn = u.Unwrap()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0 // orderly close; n > 0 is a pipelined request, still there
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			closed = true // reset or other socket error
		}
	})
	return closed
}

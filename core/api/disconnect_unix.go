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
	_, closed := peek(conn)
	return closed
}

// peerSent reports whether bytes from the client wait unread in the socket.
func peerSent(conn net.Conn) bool {
	data, _ := peek(conn)
	return data
}

func peek(conn net.Conn) (data, closed bool) {
	for {
		u, ok := conn.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		conn = u.Unwrap()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			data, closed = n > 0, n == 0 // n == 0: orderly close
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			closed = true // reset or other socket error
		}
	})
	return data, closed
}

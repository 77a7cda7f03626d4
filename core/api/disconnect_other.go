//go:build !unix

package api

import "net"

// peerClosed cannot peek at sockets here: disconnects are not detected.
func peerClosed(net.Conn) bool { return false }

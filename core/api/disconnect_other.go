//go:build !unix

package api

import "net"

// peerClosed cannot peek at sockets here: disconnects are not detected.
func peerClosed(net.Conn) bool { return false }

// peerSent cannot peek here: assume a request may be waiting.
func peerSent(net.Conn) bool { return true }

package api

import (
	"net"
	"sync"
	"sync/atomic"
)

// trackingListener remembers open connections and whether each has sent a
// byte, so shutdown can drop the ones that never sent a request: fasthttp
// counts a connection waiting for its first request as busy and would hold
// shutdown until its read timeout.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	used atomic.Bool
	once sync.Once
}

func newTrackingListener(ln net.Listener) *trackingListener {
	return &trackingListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeSilent closes every connection that has not sent anything yet:
// nothing read by the server and nothing waiting in its socket (a request
// the server has not read yet is still served).
func (l *trackingListener) closeSilent() {
	l.mu.Lock()
	var silent []*trackedConn
	for c := range l.conns {
		if !c.used.Load() && !peerSent(c.Conn) {
			silent = append(silent, c)
		}
	}
	l.mu.Unlock()
	for _, c := range silent {
		c.Close()
	}
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.used.Store(true)
	}
	return n, err
}

// Unwrap returns the connection this one wraps.
func (c *trackedConn) Unwrap() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

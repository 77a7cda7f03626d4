// Package egress guards DataPulse's outbound connections (webhooks, Slack,
// SMTP, any URL a user can configure) against server-side request forgery.
//
// The check runs at connect time, on the address the socket is about to
// connect to (a net.Dialer Control hook), not on the URL text: DNS rebinding,
// alternative IP spellings (2130706433, 0x7f.1, ::ffff:127.0.0.1) and
// redirects to internal addresses all end up at the same hook and are
// refused. Exceptions are listed with --egress-allow (hosts, IPs or CIDRs).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is matched (errors.Is) by every refusal of the guard.
var ErrRefused = errors.New("egress refused")

// RefusedError says which address was refused and why.
type RefusedError struct {
	// Host is the name that was dialled when it was not an IP literal.
	Host string
	// Addr is the address the connection would have gone to (may be invalid
	// when the address could not be parsed at all).
	Addr netip.Addr
	// Reason is a short phrase: "a loopback address", "a cloud metadata address", …
	Reason string
}

func (e *RefusedError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("egress: refused: %s", e.Reason)
	}
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("egress: %s resolves to %s, %s; add %s or %s to --egress-allow to allow it", e.Host, e.Addr, e.Reason, e.Host, e.Addr)
	}
	return fmt.Sprintf("egress: %s is %s; add it to --egress-allow to allow it", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// blocked lists the special-purpose ranges refused by default, most specific
// first (the first match names the reason).
var blocked = func() []struct {
	p      netip.Prefix
	reason string
} {
	list := []struct{ cidr, reason string }{
		{"169.254.169.254/32", "a cloud metadata address"},
		{"100.100.100.200/32", "a cloud metadata address"},
		{"fd00:ec2::254/128", "a cloud metadata address"},
		{"255.255.255.255/32", "the broadcast address"},
		{"0.0.0.0/8", "an unspecified (\"this network\") address"},
		{"10.0.0.0/8", "a private address"},
		{"100.64.0.0/10", "a carrier-grade NAT (shared) address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private address"},
		{"192.0.0.0/24", "an IETF protocol assignment address"},
		{"192.0.2.0/24", "a documentation address"},
		{"192.88.99.0/24", "a 6to4 relay anycast address"},
		{"192.168.0.0/16", "a private address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"198.51.100.0/24", "a documentation address"},
		{"203.0.113.0/24", "a documentation address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "an unspecified address"},
		{"::1/128", "a loopback address"},
		{"::/96", "an IPv4-compatible IPv6 address"},
		{"64:ff9b:1::/48", "a local-use NAT64 address"},
		{"100::/64", "a discard-only address"},
		{"2001::/32", "a Teredo address"},
		{"2001:10::/28", "an ORCHID address"},
		{"2001:20::/28", "an ORCHIDv2 address"},
		{"2001:db8::/32", "a documentation address"},
		{"3fff::/20", "a documentation address"},
		{"5f00::/16", "a segment-routing address"},
		{"fc00::/7", "a unique-local address"},
		{"fe80::/10", "a link-local address"},
		{"fec0::/10", "a site-local address"},
		{"ff00::/8", "a multicast address"},
	}
	out := make([]struct {
		p      netip.Prefix
		reason string
	}, len(list))
	for i, b := range list {
		out[i].p, out[i].reason = netip.MustParsePrefix(b.cidr), b.reason
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Classify says why addr is refused by default, or "" when it is a public
// unicast address. IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4
// address they carry.
func Classify(addr netip.Addr) string {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return "not a valid IP address"
	}
	if addr.Is4In6() {
		if r := Classify(addr.Unmap()); r != "" {
			return r + " (IPv4-mapped)"
		}
		return ""
	}
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		if r := Classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
			return r + " (NAT64)"
		}
		return ""
	}
	if addr.Is6() && sixToFour.Contains(addr) {
		b := addr.As16()
		if r := Classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
			return r + " (6to4)"
		}
		return ""
	}
	for _, b := range blocked {
		if b.p.Contains(addr) {
			return b.reason
		}
	}
	return ""
}

// Guard dials outbound connections, refusing internal addresses unless they
// are on its allow list. The zero value is not usable: call New.
type Guard struct {
	allow AllowList
	// lookup resolves a host name; tests replace it to avoid real DNS.
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration
}

// Option configures a Guard.
type Option func(*Guard)

// WithLookup replaces name resolution (net.DefaultResolver.LookupNetIP);
// for tests that must not query DNS, or to plug in another resolver.
func WithLookup(f func(ctx context.Context, network, host string) ([]netip.Addr, error)) Option {
	return func(g *Guard) { g.lookup = f }
}

// New returns a guard allowing the entries of allow in addition to public
// unicast addresses.
func New(allow AllowList, opts ...Option) *Guard {
	g := &Guard{allow: allow, lookup: net.DefaultResolver.LookupNetIP, ConnectTimeout: 10 * time.Second}
	for _, o := range opts {
		o(g)
	}
	return g
}

// Allow returns the guard's allow list.
func (g *Guard) Allow() AllowList { return g.allow }

// Check says whether a connection to addr (reached by dialling host, which
// may be empty or the address itself) is allowed; the error is a
// *RefusedError.
func (g *Guard) Check(host string, addr netip.Addr) error {
	addr = addr.WithZone("")
	if g.allow.AllowsHost(host) || g.allow.AllowsAddr(addr) {
		return nil
	}
	reason := Classify(addr)
	if reason == "" {
		return nil
	}
	return &RefusedError{Host: host, Addr: addr, Reason: reason}
}

// control is the net.Dialer Control hook: it runs after resolution, right
// before connect(2), with the literal address the socket connects to.
func (g *Guard) control(host string) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if network != "tcp4" && network != "tcp6" {
			return &RefusedError{Host: host, Reason: fmt.Sprintf("network %q is not allowed", network)}
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &RefusedError{Host: host, Reason: fmt.Sprintf("cannot parse address %q", address)}
		}
		return g.Check(host, ap.Addr())
	}
}

// DialContext connects like net.Dialer.DialContext ("tcp", "tcp4" or
// "tcp6" only), refusing internal addresses at connect time. Every resolved
// address is tried in turn; when none connects the error of the first
// refused address wins (it is the actionable one).
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &RefusedError{Reason: fmt.Sprintf("network %q is not allowed", network)}
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("egress: bad port %q", portStr)
	}
	// The Control hook knows the dialled name, so a host entry of the allow
	// list applies to connections made to that name (and only to those).
	d := &net.Dialer{Timeout: g.ConnectTimeout, Control: g.control(normalizeHost(host))}

	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
		d.Control = g.control("")
	} else if LooksNumeric(host) {
		// 2130706433, 0x7f.1, 0177.1: IP spellings some resolvers accept;
		// never a real name, and not worth a DNS query.
		return nil, &RefusedError{Host: host, Reason: fmt.Sprintf("%q is a numeric IP spelling, not a host name", host)}
	} else {
		lookupNet := "ip"
		if network == "tcp4" {
			lookupNet = "ip4"
		} else if network == "tcp6" {
			lookupNet = "ip6"
		}
		addrs, err = g.lookup(ctx, lookupNet, host)
		if err != nil {
			return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("egress: %s has no address", host)
		}
	}
	var refused, other error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if errors.Is(err, ErrRefused) {
			var re *RefusedError
			if errors.As(err, &re) && refused == nil {
				refused = re
			}
		} else if other == nil {
			other = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if refused != nil {
		return nil, refused
	}
	return nil, other
}

// SMTPDialFunc returns the dial function for SMTP clients (go-mail's
// DialContextFunc has this signature).
func (g *Guard) SMTPDialFunc() func(ctx context.Context, network, address string) (net.Conn, error) {
	return g.DialContext
}

// maxRedirects is how many redirects a client that follows them takes.
const maxRedirects = 5

// DefaultHTTPTimeout is HTTPClient's timeout when given none.
const DefaultHTTPTimeout = 30 * time.Second

// HTTPClient returns a client whose every connection goes through the guard;
// timeout bounds a whole request (<= 0: DefaultHTTPTimeout).
// It ignores HTTP(S)_PROXY (a proxy would connect on our behalf, past the
// guard). With followRedirects false a 3xx answer is returned as it is (for
// webhooks, a delivery failure); with true, up to 5 http/https redirects are
// followed and each hop's connection is checked again.
func (g *Guard) HTTPClient(timeout time.Duration, followRedirects bool) *http.Client {
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           10,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	c := &http.Client{Transport: tr, Timeout: timeout}
	if followRedirects {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("egress: stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return &RefusedError{Reason: fmt.Sprintf("redirect to scheme %q", req.URL.Scheme)}
			}
			return nil
		}
	} else {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

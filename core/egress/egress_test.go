package egress_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datapulse/datapulse/core/egress"
)

// noDNS makes sure no test resolves a name through real DNS: only the names
// mapped here resolve.
func noDNS(names map[string][]netip.Addr) egress.Option {
	return egress.WithLookup(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if a, ok := names[strings.ToLower(host)]; ok {
			return a, nil
		}
		return nil, fmt.Errorf("test resolver: unknown name %q", host)
	})
}

// listen starts a TCP listener on a loopback address that accepts and
// closes connections, counting them.
func listen(t *testing.T, addr string) (port string, hits *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	hits = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(l.Addr().String())
	return port, hits
}

func TestDialRefusesInternalAddresses(t *testing.T) {
	port4, hits4 := listen(t, "127.0.0.1:0")
	port6, hits6 := listen(t, "[::1]:0")
	// 10.0.0.1 and 169.254.169.254 are refused by the Control hook before
	// connect(2): no packet leaves the machine.
	cases := []struct {
		name, addr, wantInMsg string
	}{
		{"ipv4 loopback", "127.0.0.1:" + port4, "127.0.0.1 is a loopback address; add it to --egress-allow to allow it"},
		{"ipv6 loopback", "[::1]:" + port6, "::1 is a loopback address"},
		{"private 10/8", "10.0.0.1:80", "10.0.0.1 is a private address"},
		{"metadata", "169.254.169.254:80", "169.254.169.254 is a cloud metadata address"},
		{"ipv4-mapped loopback", "[::ffff:127.0.0.1]:" + port4, "loopback"},
		{"unspecified", "0.0.0.0:" + port4, "unspecified"},
		{"cgnat", "100.64.1.1:80", "carrier-grade NAT"},
		{"unique local", "[fd12::1]:80", "unique-local"},
		{"link local v6", "[fe80::1]:80", "link-local"},
		{"aws v6 metadata", "[fd00:ec2::254]:80", "cloud metadata"},
		{"localhost via /etc/hosts", "localhost:" + port4, "localhost resolves to"},
	}
	g := egress.New(egress.AllowList{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := g.DialContext(ctx, "tcp", c.addr)
			if err == nil {
				conn.Close()
				t.Fatalf("dial %s: want refusal, got a connection", c.addr)
			}
			if !errors.Is(err, egress.ErrRefused) {
				t.Fatalf("dial %s: want ErrRefused, got %v", c.addr, err)
			}
			if !strings.Contains(err.Error(), c.wantInMsg) {
				t.Fatalf("dial %s: message %q does not contain %q", c.addr, err, c.wantInMsg)
			}
		})
	}
	if n := hits4.Load() + hits6.Load(); n != 0 {
		t.Fatalf("listeners were reached %d times", n)
	}
}

func TestDialResolvedNameIsCheckedAtConnectTime(t *testing.T) {
	port, hits := listen(t, "127.0.0.2:0")
	// A public-looking name that resolves to loopback (what DNS rebinding
	// does on the second lookup): the connect-time check sees 127.0.0.2.
	g := egress.New(egress.AllowList{}, noDNS(map[string][]netip.Addr{
		"hooks.example.com": {netip.MustParseAddr("127.0.0.2")},
	}))
	_, err := g.DialContext(context.Background(), "tcp", "hooks.example.com:"+port)
	if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "hooks.example.com resolves to 127.0.0.2, a loopback address") {
		t.Fatalf("want refusal naming the host and address, got %v", err)
	}
	if hits.Load() != 0 {
		t.Fatal("listener reached")
	}
}

func TestDialAllowedWhenListed(t *testing.T) {
	port, hits := listen(t, "127.0.0.1:0")
	port6, hits6 := listen(t, "[::1]:0")
	cases := []struct{ allow, addr string }{
		{"127.0.0.1", "127.0.0.1:" + port},
		{"127.0.0.0/8", "127.0.0.1:" + port},
		{"::ffff:127.0.0.1", "127.0.0.1:" + port},
		{"127.0.0.1", "[::ffff:127.0.0.1]:" + port},
		{"localhost", "localhost:" + port},
		{"LOCALHOST.", "localhost:" + port},
		{"::1", "[::1]:" + port6},
	}
	want := int32(0)
	for _, c := range cases {
		g := egress.New(egress.MustParseAllowList(c.allow))
		conn, err := g.DialContext(context.Background(), "tcp", c.addr)
		if err != nil {
			t.Fatalf("allow %q, dial %s: %v", c.allow, c.addr, err)
		}
		conn.Close()
		want++
	}
	// The listeners really were reached (accept runs asynchronously).
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load()+hits6.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := hits.Load() + hits6.Load(); got != want {
		t.Fatalf("listeners reached %d times, want %d", got, want)
	}
	// Allowing one address does not allow its neighbour.
	g := egress.New(egress.MustParseAllowList("127.0.0.2"))
	if _, err := g.DialContext(context.Background(), "tcp", "127.0.0.1:"+port); !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("127.0.0.1 with only 127.0.0.2 allowed: %v", err)
	}
	// A host entry allows that name only, not the address by another name.
	g = egress.New(egress.MustParseAllowList("other.internal"), noDNS(map[string][]netip.Addr{"other.internal": {netip.MustParseAddr("127.0.0.1")}}))
	if _, err := g.DialContext(context.Background(), "tcp", "localhost:"+port); err == nil {
		// localhost is resolved by the test resolver: unknown, so an error either way
		t.Fatal("localhost must not be allowed by another host's entry")
	}
	if c, err := g.DialContext(context.Background(), "tcp", "other.internal:"+port); err != nil {
		t.Fatalf("other.internal is listed: %v", err)
	} else {
		c.Close()
	}
	if _, err := g.DialContext(context.Background(), "tcp", "127.0.0.1:"+port); !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("the IP of a listed name is not listed itself: %v", err)
	}
}

func TestDialRefusesOtherNetworks(t *testing.T) {
	g := egress.New(egress.MustParseAllowList("127.0.0.0/8"))
	for _, n := range []string{"udp", "unix", "ip4:icmp"} {
		if _, err := g.DialContext(context.Background(), n, "127.0.0.1:53"); !errors.Is(err, egress.ErrRefused) {
			t.Errorf("network %s: want refusal, got %v", n, err)
		}
	}
}

// redirector answers every request with a 302 to target.
func redirector(t *testing.T, addr, target string) (url string, hits *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	hits = new(atomic.Int32)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if target == "" {
			io.WriteString(w, "ok")
			return
		}
		http.Redirect(w, r, target, http.StatusFound)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/", hits
}

func TestHTTPRedirectToInternalAddressRefused(t *testing.T) {
	// 127.0.0.2 stands in for a public receiver (allowed), 127.0.0.3 for an
	// internal service (not allowed): the first hop connects, the redirect
	// target is refused at connect time.
	internal, internalHits := redirector(t, "127.0.0.3:0", "")
	public, publicHits := redirector(t, "127.0.0.2:0", internal)
	g := egress.New(egress.MustParseAllowList("127.0.0.2"))

	resp, err := g.HTTPClient(5*time.Second, true).Get(public)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("followed the redirect to %s: status %d", internal, resp.StatusCode)
	}
	if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "127.0.0.3 is a loopback address") {
		t.Fatalf("want refusal of 127.0.0.3, got %v", err)
	}
	if publicHits.Load() != 1 || internalHits.Load() != 0 {
		t.Fatalf("hits: public %d (want 1), internal %d (want 0)", publicHits.Load(), internalHits.Load())
	}

	// Not following: the 302 itself is the answer.
	resp, err = g.HTTPClient(5*time.Second, false).Get(public)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || internalHits.Load() != 0 {
		t.Fatalf("status %d, internal hits %d", resp.StatusCode, internalHits.Load())
	}

	// With both listed the redirect is followed (the guard, not the client,
	// made the difference above).
	g = egress.New(egress.MustParseAllowList("127.0.0.2,127.0.0.3"))
	resp, err = g.HTTPClient(5*time.Second, true).Get(public)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" || internalHits.Load() != 1 {
		t.Fatalf("body %q, internal hits %d", body, internalHits.Load())
	}
}

func TestHTTPClientIgnoresProxyEnvironment(t *testing.T) {
	proxyPort, proxyHits := listen(t, "127.0.0.4:0")
	t.Setenv("HTTP_PROXY", "http://127.0.0.4:"+proxyPort)
	t.Setenv("http_proxy", "http://127.0.0.4:"+proxyPort)
	target, hits := redirector(t, "127.0.0.5:0", "")
	g := egress.New(egress.MustParseAllowList("127.0.0.5"))
	resp, err := g.HTTPClient(5*time.Second, false).Get(target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 || proxyHits.Load() != 0 {
		t.Fatalf("target hits %d, proxy hits %d", hits.Load(), proxyHits.Load())
	}
}

func TestClassify(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1":        "a loopback address",
		"::ffff:7f00:1":    "a loopback address (IPv4-mapped)",
		"::ffff:a9fe:a9fe": "a cloud metadata address (IPv4-mapped)",
		"64:ff9b::7f00:1":  "a loopback address (NAT64)",
		"2002:a00:1::1":    "a private address (6to4)",
		"::127.0.0.1":      "an IPv4-compatible IPv6 address",
		"0.1.2.3":          "an unspecified (\"this network\") address",
		"172.31.255.255":   "a private address",
		"172.32.0.1":       "",
		"192.168.1.1":      "a private address",
		"100.100.100.200":  "a cloud metadata address",
		"255.255.255.255":  "the broadcast address",
		"224.0.0.1":        "a multicast address",
		"ff02::1":          "a multicast address",
		"fe80::1%eth0":     "a link-local address",
		"8.8.8.8":          "",
		"2606:4700::1111":  "",
		"64:ff9b::808:808": "",
		"::ffff:8.8.8.8":   "",
	}
	for in, want := range cases {
		if got := egress.Classify(netip.MustParseAddr(in)); got != want {
			t.Errorf("Classify(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAllowList(t *testing.T) {
	a, err := egress.ParseAllowList(" 10.0.0.0/8, mail.internal ,, 192.168.1.5, *.corp.example, [fd00::1], ::ffff:10.1.0.0/112 ")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.String(); got != "10.0.0.0/8,mail.internal,192.168.1.5,*.corp.example,fd00::1,10.1.0.0/16" {
		t.Fatalf("String() = %s", got)
	}
	checks := []struct {
		host string
		want bool
	}{
		{"mail.internal", true}, {"MAIL.INTERNAL.", true}, {"x.mail.internal", false},
		{"a.corp.example", true}, {"corp.example", false}, {"10.2.3.4", true}, {"[fd00::1]", true},
		{"192.168.1.6", false}, {"10.1.2.3", true}, {"", false},
	}
	for _, c := range checks {
		if got := a.AllowsTarget(c.host); got != c.want {
			t.Errorf("AllowsTarget(%q) = %v, want %v", c.host, got, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "host:25", "http://x", "2130706433", "0x7f.1", "a..b", "-a.b", "fe80::1%eth0", "*", "ex ample"} {
		if _, err := egress.ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q): want an error", bad)
		}
	}
}

func FuzzParseAllowList(f *testing.F) {
	for _, s := range []string{"", "127.0.0.1", "10.0.0.0/8,mail.internal", "*.corp.example", "::ffff:1.2.3.4/120", "[::1]", "a,b,,c", "2130706433", "fe80::1%lo", "x/y", "\x00", "é.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := egress.ParseAllowList(s)
		if err != nil {
			if !a.Empty() {
				t.Fatal("an error must come with an empty list")
			}
			return
		}
		// The canonical form parses back to itself.
		b, err := egress.ParseAllowList(a.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", a.String(), s, err)
		}
		if b.String() != a.String() {
			t.Fatalf("round trip: %q -> %q", a.String(), b.String())
		}
		for _, e := range a.Entries() {
			if strings.ContainsAny(e, ", \t\r\n") {
				t.Fatalf("entry %q has separators", e)
			}
		}
	})
}

func TestEveryConnectionResolvesAndIsChecked(t *testing.T) {
	// DNS rebinding: the same name answers an allowed address first and an
	// internal one next. Each connection is checked on its own resolution,
	// so the second is refused. (127.0.0.2 stands in for a public address.)
	port2, hits2 := listen(t, "127.0.0.2:0")
	_, hits3 := listen(t, "127.0.0.3:"+port2)
	var calls atomic.Int32
	g := egress.New(egress.MustParseAllowList("127.0.0.2"), egress.WithLookup(func(context.Context, string, string) ([]netip.Addr, error) {
		if calls.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.3")}, nil
	}))
	c, err := g.DialContext(context.Background(), "tcp", "rebind.example.com:"+port2)
	if err != nil {
		t.Fatalf("first connection: %v", err)
	}
	c.Close()
	if _, err := g.DialContext(context.Background(), "tcp", "rebind.example.com:"+port2); !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "rebind.example.com resolves to 127.0.0.3") {
		t.Fatalf("second connection: want refusal, got %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for hits2.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if hits2.Load() != 1 || hits3.Load() != 0 {
		t.Fatalf("hits: allowed %d (want 1), internal %d (want 0)", hits2.Load(), hits3.Load())
	}
}

func TestLooksNumeric(t *testing.T) {
	for h, want := range map[string]bool{"2130706433": true, "0x7f.1": true, "0177.0.0.1": true, "127.1": true, "1.2.3.4.5": true, "127.0.0.1": false, "::1": false, "example.com": false, "1e100.net": false, "a.0x": true, "": false} {
		if got := egress.LooksNumeric(h); got != want {
			t.Errorf("LooksNumeric(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestNumericIPSpellingsRefusedWithoutLookup(t *testing.T) {
	g := egress.New(egress.MustParseAllowList("127.0.0.0/8"), egress.WithLookup(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		t.Errorf("lookup of %q: numeric spellings must be refused before any resolution", host)
		return nil, errors.New("no")
	}))
	for _, h := range []string{"2130706433", "0x7f.1", "0177.0.0.1", "127.1"} {
		_, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort(h, "80"))
		if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), "numeric IP spelling") {
			t.Errorf("%s: %v", h, err)
		}
	}
}

package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// AllowList is the parsed --egress-allow: IP prefixes and host names whose
// connections are allowed even when they go to internal addresses.
//
// Entries carry no port: allowing 10.0.0.5 allows every port of it.
// A host entry ("mail.internal") allows the connections made to that name,
// whatever it resolves to; "*.corp.example" allows every name under
// corp.example (not corp.example itself).
type AllowList struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
	suffixes []string // ".corp.example" for "*.corp.example"
	entries  []string
}

// maxAllowEntries bounds the list (it is configuration, not data).
const maxAllowEntries = 1000

// ParseAllowList reads a comma-separated list of hosts, IPs and CIDRs.
// Blank entries are ignored. IPv4-mapped IPv6 entries are stored as IPv4.
func ParseAllowList(s string) (AllowList, error) {
	var a AllowList
	var errs []error
	for _, raw := range strings.Split(s, ",") {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if len(a.entries) >= maxAllowEntries {
			return AllowList{}, fmt.Errorf("egress-allow: more than %d entries", maxAllowEntries)
		}
		if err := a.add(e); err != nil {
			errs = append(errs, err)
			continue
		}
	}
	if len(errs) > 0 {
		return AllowList{}, errors.Join(errs...)
	}
	return a, nil
}

// MustParseAllowList is ParseAllowList for tests and constants.
func MustParseAllowList(s string) AllowList {
	a, err := ParseAllowList(s)
	if err != nil {
		panic(err)
	}
	return a
}

func (a *AllowList) add(e string) error {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("egress-allow: %q is not a CIDR (want e.g. 10.0.0.0/8 or fd00::/8)", e)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		a.entries = append(a.entries, p.Masked().String())
		return nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("egress-allow: %q: zones are not supported", e)
		}
		ip = ip.Unmap()
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		a.entries = append(a.entries, ip.String())
		return nil
	}
	h := normalizeHost(e)
	wild := false
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		wild, h = true, rest
	}
	if !validHostname(h) {
		return fmt.Errorf("egress-allow: %q is not a host name, IP address or CIDR (ports are not supported)", e)
	}
	if a.hosts == nil {
		a.hosts = map[string]bool{}
	}
	if wild {
		a.suffixes = append(a.suffixes, "."+h)
		a.entries = append(a.entries, "*."+h)
	} else {
		a.hosts[h] = true
		a.entries = append(a.entries, h)
	}
	return nil
}

// validHostname accepts LDH labels (and underscores, seen in internal
// names) of 1–63 bytes, 253 bytes at most in all; a name made of digits
// whose last label is numeric (decimal or 0x hex, as in the IP spellings
// 2130706433, 0177.1 or 0x7f.1, which resolvers read as IPv4) is refused.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if numericLabel(labels[len(labels)-1]) {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// LooksNumeric reports whether host is not an IP literal but ends in a
// numeric label, like the IP spellings 2130706433, 0177.0.0.1 or 0x7f.1
// that some resolvers turn into IPv4 addresses. URL validators refuse such
// hosts: they are never legitimate names.
func LooksNumeric(host string) bool {
	h := normalizeHost(host)
	if _, err := netip.ParseAddr(h); err == nil || h == "" {
		return false
	}
	labels := strings.Split(h, ".")
	return numericLabel(labels[len(labels)-1])
}

// numericLabel is the WHATWG URL "ends in a number" test for one label.
func numericLabel(l string) bool {
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return l != "" && strings.Trim(l, "0123456789") == ""
}

// AllowsHost reports whether host (a name, not an IP) is on the list.
func (a AllowList) AllowsHost(host string) bool {
	h := normalizeHost(host)
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	if a.hosts[h] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// AllowsAddr reports whether addr is inside an allowed IP or CIDR.
func (a AllowList) AllowsAddr(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(addr) || (addr.Is4In6() && p.Contains(addr.Unmap())) {
			return true
		}
	}
	return false
}

// AllowsTarget reports whether a URL host (name or IP literal, brackets
// allowed) is explicitly on the list: a listed name, or an IP literal in a
// listed prefix. Used to relax URL rules (plain http) for listed receivers.
func (a AllowList) AllowsTarget(host string) bool {
	h := normalizeHost(host)
	if ip, err := netip.ParseAddr(h); err == nil {
		return a.AllowsAddr(ip)
	}
	return a.AllowsHost(h)
}

// Entries returns the normalized entries, in order.
func (a AllowList) Entries() []string { return append([]string(nil), a.entries...) }

// String is the canonical comma-separated form (ParseAllowList reads it back).
func (a AllowList) String() string { return strings.Join(a.entries, ",") }

// Empty reports whether nothing is allowed beyond public addresses.
func (a AllowList) Empty() bool { return len(a.entries) == 0 }

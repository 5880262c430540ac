package qualtrics

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrURLNotAllowed is wrapped by every refusal of HostPolicy: at registration (CheckURL), before
// each request, and at dial time against the resolved address.
var ErrURLNotAllowed = errors.New("destination URL not allowed")

// DefaultAllowedHosts is the allow-list when HostPolicy.AllowedHosts is empty.
var DefaultAllowedHosts = []string{"*.qualtrics.com"}

// HostPolicy is the SSRF guard.
//
// AllowedHosts patterns are an exact host name ("eu.qualtrics.com", "127.0.0.1") or "*.domain",
// which matches any subdomain at any depth but not the apex unless listed too. Matching is
// case-insensitive and ignores a trailing dot and the port.
//
// AllowPrivate (QGATE_ALLOW_PRIVATE_NETWORKS; tests and demos) allows loopback, private and
// link-local targets, and plain http. With it, loopback and private IP literals and "localhost"
// pass even when not on the allow-list, so a demo needs only the one switch. Cloud metadata
// addresses (169.254.169.254, fd00:ec2::254) stay refused even then: no test or demo needs them
// and they are the usual prize of an SSRF.
type HostPolicy struct {
	AllowedHosts []string
	AllowPrivate bool
}

// CheckURL validates a destination URL: absolute, https (http only when AllowPrivate), no
// userinfo, host on the allow-list, and an IP-literal host not private, loopback, link-local,
// unspecified, multicast or reserved (IPv4-mapped IPv6 included) unless AllowPrivate. It cannot
// see what a name resolves to; the Client's dialer checks that on every connection.
// The error wraps ErrURLNotAllowed and gives a reason an operator can act on; it never quotes
// the URL's query, which may carry an event identifier.
func (p HostPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: not a valid URL", ErrURLNotAllowed)
	}
	if !u.IsAbs() || u.Opaque != "" {
		return fmt.Errorf("%w: must be an absolute https URL", ErrURLNotAllowed)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !p.AllowPrivate {
			return fmt.Errorf("%w: scheme must be https", ErrURLNotAllowed)
		}
	default:
		return fmt.Errorf("%w: scheme %q not allowed, must be https", ErrURLNotAllowed, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL are not allowed (use username and apiToken)", ErrURLNotAllowed)
	}
	host := normalizeHost(u.Hostname())
	if host == "" {
		return fmt.Errorf("%w: missing host", ErrURLNotAllowed)
	}
	if port := u.Port(); port != "" {
		if n, ok := parsePort(port); !ok || n == 0 {
			return fmt.Errorf("%w: invalid port %q", ErrURLNotAllowed, port)
		}
	}
	return p.checkHost(host)
}

// checkHost applies the allow-list and the IP-literal rules to a normalized host name.
func (p HostPolicy) checkHost(host string) error {
	if addr, err := netip.ParseAddr(host); err == nil {
		if why := p.blockedAddr(addr); why != "" {
			return fmt.Errorf("%w: %s is a %s address", ErrURLNotAllowed, host, why)
		}
		if p.AllowPrivate && privateAddr(addr) != "" {
			return nil
		}
	} else if p.AllowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return nil // still subject to the dial-time check
	}
	if !p.hostAllowed(host) {
		return fmt.Errorf("%w: host %s is not on the allow-list (%s)", ErrURLNotAllowed, host,
			strings.Join(p.allowed(), ", "))
	}
	return nil
}

func (p HostPolicy) allowed() []string {
	if len(p.AllowedHosts) == 0 {
		return DefaultAllowedHosts
	}
	return p.AllowedHosts
}

func (p HostPolicy) hostAllowed(host string) bool {
	for _, pat := range p.allowed() {
		pat = normalizeHost(pat)
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			if suffix != "" && strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if pat != "" && host == pat {
			return true
		}
	}
	return false
}

// blockedAddr returns why addr may not be a destination under this policy, or "".
func (p HostPolicy) blockedAddr(addr netip.Addr) string {
	if metadataAddr(addr) {
		return "cloud metadata"
	}
	if p.AllowPrivate {
		return ""
	}
	return privateAddr(addr)
}

// dialControl is the net.Dialer Control hook: it sees the resolved address of every connection
// the transport opens, so DNS rebinding and names pointing inside the network are caught.
func (p HostPolicy) dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial to unparsable address %q refused", ErrURLNotAllowed, address)
	}
	if why := p.blockedAddr(ap.Addr()); why != "" {
		return fmt.Errorf("%w: dial to %s refused: %s address", ErrURLNotAllowed, ap.Addr().Unmap(), why)
	}
	return nil
}

var reservedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba
}

func metadataAddr(addr netip.Addr) bool {
	addr = unwrap(addr)
	for _, m := range metadataAddrs {
		if addr == m {
			return true
		}
	}
	return false
}

// privateAddr names the kind of non-public address addr is, or returns "" for a public one.
func privateAddr(addr netip.Addr) string {
	addr = unwrap(addr)
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast():
		return "multicast"
	}
	for _, p := range reservedPrefixes {
		if p.Contains(addr) {
			return "reserved"
		}
	}
	return ""
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// unwrap returns the IPv4 address carried by an IPv4-mapped, NAT64 or 6to4 IPv6 address, so the
// IPv4 rules apply to it; any other address is returned unchanged (without a zone).
func unwrap(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if !addr.Is6() {
		return addr
	}
	b := addr.As16()
	switch {
	case nat64Prefix.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return addr
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

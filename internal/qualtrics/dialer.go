package qualtrics

import "syscall"

// DialControl is the policy's dial-time SSRF check, for other HTTP clients that call out to
// operator-configured URLs (survey watch's API v3 client, notification channels): set it as
// net.Dialer.Control. It refuses cloud metadata addresses always, and private, loopback and
// link-local ones unless AllowPrivate; the allow-list is checked by CheckURL, not here.
func (p HostPolicy) DialControl(network, address string, c syscall.RawConn) error {
	return p.dialControl(network, address, c)
}

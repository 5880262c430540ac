package qualtrics

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	def := HostPolicy{}
	apex := HostPolicy{AllowedHosts: []string{"*.qualtrics.com", "qualtrics.com"}}
	priv := HostPolicy{AllowPrivate: true}
	local := HostPolicy{AllowedHosts: []string{"localhost", "127.0.0.1"}}

	tests := []struct {
		name   string
		policy HostPolicy
		url    string
		ok     bool
	}{
		{"https subdomain", def, "https://iad1.qualtrics.com/API/v3/events/SV_1?token=abc&x=1", true},
		{"https deep subdomain", def, "https://a.b.qualtrics.com/x", true},
		{"upper case host and trailing dot", def, "https://IAD1.Qualtrics.COM./x", true},
		{"https with port", def, "https://iad1.qualtrics.com:8443/x", true},
		{"apex not matched by wildcard", def, "https://qualtrics.com/x", false},
		{"apex when listed", apex, "https://qualtrics.com/x", true},
		{"lookalike suffix", def, "https://evilqualtrics.com/x", false},
		{"suffix trick", def, "https://iad1.qualtrics.com.evil.com/x", false},
		{"other host", def, "https://example.com/x", false},
		{"http refused", def, "http://iad1.qualtrics.com/x", false},
		{"ftp refused", def, "ftp://iad1.qualtrics.com/x", false},
		{"relative", def, "/events/x", false},
		{"no scheme", def, "iad1.qualtrics.com/x", false},
		{"opaque", def, "https:iad1.qualtrics.com", false},
		{"empty", def, "", false},
		{"garbage", def, "https://[::1", false},
		{"empty host", def, "https:///x", false},
		{"bad port", def, "https://iad1.qualtrics.com:99999/x", false},
		{"userinfo", def, "https://user:pw@iad1.qualtrics.com/x", false},
		{"userinfo user only", def, "https://user@iad1.qualtrics.com/x", false},
		{"127.0.0.1", def, "https://127.0.0.1/x", false},
		{"10.0.0.1", def, "https://10.0.0.1/x", false},
		{"192.168.1.1", def, "https://192.168.1.1/x", false},
		{"172.16.0.1", def, "https://172.16.0.1/x", false},
		{"metadata", def, "https://169.254.169.254/latest/meta-data", false},
		{"0.0.0.0", def, "https://0.0.0.0/x", false},
		{"CGNAT", def, "https://100.64.0.1/x", false},
		{"multicast", def, "https://224.0.0.1/x", false},
		{"broadcast", def, "https://255.255.255.255/x", false},
		{"[::1]", def, "https://[::1]/x", false},
		{"[::]", def, "https://[::]/x", false},
		{"[::ffff:127.0.0.1]", def, "https://[::ffff:127.0.0.1]/x", false},
		{"[::ffff:169.254.169.254]", def, "https://[::ffff:169.254.169.254]/x", false},
		{"[fe80::1]", def, "https://[fe80::1]/x", false},
		{"[fd00::1]", def, "https://[fd00::1]/x", false},
		{"[fd00:ec2::254]", def, "https://[fd00:ec2::254]/x", false},
		{"[64:ff9b::7f00:1] NAT64 loopback", def, "https://[64:ff9b::7f00:1]/x", false},
		{"[2002:7f00:1::] 6to4 loopback", def, "https://[2002:7f00:1::]/x", false},
		{"[ff02::1]", def, "https://[ff02::1]/x", false},
		{"public IP not on allow-list", def, "https://8.8.8.8/x", false},
		{"loopback listed but private not allowed", local, "https://127.0.0.1/x", false},
		{"localhost name listed: only the dialer can tell", local, "https://localhost/x", true},
		{"allow private: http loopback", priv, "http://127.0.0.1:8081/events/x?y=1", true},
		{"allow private: https 10/8", priv, "https://10.0.0.1/x", true},
		{"allow private: [::1]", priv, "http://[::1]:8081/x", true},
		{"allow private: localhost", priv, "http://localhost:8081/x", true},
		{"allow private: qualtrics still ok", priv, "https://iad1.qualtrics.com/x", true},
		{"allow private: other public host", priv, "http://example.com/x", false},
		{"allow private: public IP not listed", priv, "http://8.8.8.8/x", false},
		{"allow private: metadata still refused", priv, "http://169.254.169.254/latest", false},
		{"allow private: mapped metadata still refused", priv, "http://[::ffff:a9fe:a9fe]/latest", false},
		{"allow private: userinfo still refused", priv, "http://u:p@127.0.0.1/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(tt.url)
			if tt.ok && err != nil {
				t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("CheckURL(%q) = nil, want refusal", tt.url)
				}
				if !errors.Is(err, ErrURLNotAllowed) {
					t.Fatalf("CheckURL(%q) = %v, not wrapping ErrURLNotAllowed", tt.url, err)
				}
			}
		})
	}
}

func TestCheckURLErrorOmitsQuery(t *testing.T) {
	err := HostPolicy{}.CheckURL("https://evil.example/x?token=s3cret")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestDialControl(t *testing.T) {
	strict := HostPolicy{}
	priv := HostPolicy{AllowPrivate: true}
	tests := []struct {
		addr          string
		strict, privd bool // allowed under each policy
	}{
		{"127.0.0.1:443", false, true},
		{"10.1.2.3:443", false, true},
		{"169.254.169.254:80", false, false},
		{"[::1]:443", false, true},
		{"[::ffff:127.0.0.1]:443", false, true},
		{"[::ffff:169.254.169.254]:80", false, false},
		{"[fe80::1%eth0]:443", false, true},
		{"0.0.0.0:443", false, true},
		{"8.8.8.8:443", true, true},
		{"[2606:4700::1111]:443", true, true},
		{"not-an-addr", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			for _, c := range []struct {
				p    HostPolicy
				want bool
			}{{strict, tt.strict}, {priv, tt.privd}} {
				err := c.p.dialControl("tcp", tt.addr, nil)
				if (err == nil) != c.want {
					t.Errorf("AllowPrivate=%v: dialControl(%s) = %v, want allowed=%v", c.p.AllowPrivate, tt.addr, err, c.want)
				}
				if err != nil && !errors.Is(err, ErrURLNotAllowed) {
					t.Errorf("error %v does not wrap ErrURLNotAllowed", err)
				}
			}
		})
	}
}

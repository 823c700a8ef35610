package dn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Names the DNS responder answers for the services (spec 2.1: Beam's
// entry points are reached at beam.soracom.io; spec 1.2: Endorse at
// endorse.soracom.io).
const (
	EndorseName   = "endorse.soracom.io"
	BeamName      = "beam.soracom.io"
	HostAliasName = "host.simgate.internal"
)

// Service ports on the stack.
const (
	DNSPort          = 53
	EndorseHTTPPort  = 80
	EndorseHTTPSPort = 443
	BeamHTTPPort     = 8888  // spec 2.1 HTTP entry point
	BeamTCPPort      = 8023  // spec 2.1 TCP->TCP/TCPS entry point
	BeamWebsitePort  = 18080 // spec 2.1 Website entry point (also on 80)
)

// Config is the dn section of simgate.yaml.
type Config struct {
	DNSAddr        string        `yaml:"dns_addr" doc:"IPv4 address of the in-network DNS responder (UDP and TCP 53)"`
	EndorseAddr    string        `yaml:"endorse_addr" doc:"IPv4 address endorse.soracom.io resolves to in the network: the token endpoint on HTTP 80 and HTTPS 443"`
	BeamAddr       string        `yaml:"beam_addr" doc:"IPv4 address beam.soracom.io resolves to in the network: Beam's entry points 8888, 8023, 18080 and 80"`
	Reserved       string        `yaml:"reserved" doc:"IPv4 prefix of in-network service addresses: the NAT never sends a flow into it, except to host_alias"`
	Hosts          []string      `yaml:"hosts" doc:"more DNS A records the responder serves, each name=ipv4"`
	MTU            int           `yaml:"mtu" doc:"MTU of the data network's interface, 576 to 65535; the MSS it advertises follows"`
	UDPIdleTimeout time.Duration `yaml:"udp_idle_timeout" doc:"a NAT UDP flow with no datagram either way for this long is closed"`
	DialTimeout    time.Duration `yaml:"dial_timeout" doc:"how long the NAT waits for a host TCP connection before it answers the device with a RST"`
	NAT            NAT           `yaml:"nat" doc:"the userspace NAT to host sockets"`
}

// NAT is the NAT's policy. Its zero value is a NAT that is off.
type NAT struct {
	Enabled   bool     `yaml:"enabled" doc:"send flows to other destinations out through host sockets (TCP and UDP); false: refuse them, and answer only in-network names"`
	Allow     []string `yaml:"allow" doc:"host destinations the NAT may reach, IPv4 prefixes or addresses; empty: all"`
	Protect   []string `yaml:"protect" doc:"host sockets the NAT never reaches, ip:port (0.0.0.0:port: every address of the host); list simgate's own N2/N3/N4 sockets"`
	HostAlias string   `yaml:"host_alias" doc:"in-network IPv4 address (DNS host.simgate.internal) whose flows go to the host's 127.0.0.1, same port; empty: none"`
}

// Defaults (doc.go).
const (
	DefaultDNSAddr        = "100.127.0.53"
	DefaultEndorseAddr    = "100.127.0.10"
	DefaultBeamAddr       = "100.127.127.100"
	DefaultHostAlias      = "100.127.0.1"
	DefaultReserved       = "100.127.0.0/16"
	DefaultMTU            = 1500
	DefaultUDPIdleTimeout = 2 * time.Minute // RFC 4787 REQ-5
	DefaultDialTimeout    = 10 * time.Second
)

// DefaultConfig is the dn configuration with nothing set: the NAT on, to
// every destination, and host_alias at 100.127.0.1.
func DefaultConfig() Config {
	return Config{
		DNSAddr:        DefaultDNSAddr,
		EndorseAddr:    DefaultEndorseAddr,
		BeamAddr:       DefaultBeamAddr,
		Reserved:       DefaultReserved,
		MTU:            DefaultMTU,
		UDPIdleTimeout: DefaultUDPIdleTimeout,
		DialTimeout:    DefaultDialTimeout,
		NAT:            NAT{Enabled: true, HostAlias: DefaultHostAlias},
	}
}

// Validate checks c; each error names its YAML key.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// settings is a validated Config.
type settings struct {
	dns, endorse, beam netip.Addr
	reserved           netip.Prefix
	names              map[string]netip.Addr // lower-case, no trailing dot
	mtu                uint32
	udpIdle, dialWait  time.Duration
	nat                bool
	allow              []netip.Prefix
	protect            []netip.AddrPort
	alias              netip.Addr // invalid: none
}

func (c Config) resolve() (*settings, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf("dn."+format, args...)) }
	s := &settings{names: map[string]netip.Addr{}, nat: c.NAT.Enabled}
	addr := func(key, v string) netip.Addr {
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		if err != nil || !a.Is4() || !usable(a) {
			bad("%s: %q is not a unicast IPv4 address", key, v)
			return netip.Addr{}
		}
		return a
	}
	s.dns = addr("dns_addr", c.DNSAddr)
	s.endorse = addr("endorse_addr", c.EndorseAddr)
	s.beam = addr("beam_addr", c.BeamAddr)
	if c.NAT.HostAlias != "" {
		s.alias = addr("nat.host_alias", c.NAT.HostAlias)
	}
	seen := map[netip.Addr]string{}
	for _, p := range []struct {
		key string
		a   netip.Addr
	}{{"dns_addr", s.dns}, {"endorse_addr", s.endorse}, {"beam_addr", s.beam}, {"nat.host_alias", s.alias}} {
		if !p.a.IsValid() {
			continue
		}
		if k, dup := seen[p.a]; dup {
			bad("%s: %s is also %s", p.key, p.a, k)
		}
		seen[p.a] = p.key
	}
	if p, err := netip.ParsePrefix(strings.TrimSpace(c.Reserved)); err != nil || !p.Addr().Is4() {
		bad("reserved: %q is not an IPv4 prefix", c.Reserved)
	} else {
		s.reserved = p.Masked()
	}
	if s.endorse.IsValid() {
		s.names[EndorseName] = s.endorse
	}
	if s.beam.IsValid() {
		s.names[BeamName] = s.beam
	}
	if s.alias.IsValid() && s.nat {
		s.names[HostAliasName] = s.alias
	}
	for _, h := range c.Hosts {
		name, ip, ok := strings.Cut(h, "=")
		name = strings.TrimSuffix(lowerASCII(strings.TrimSpace(name)), ".")
		if !ok || !validName(name) {
			bad("hosts: %q is not name=ipv4", h)
			continue
		}
		a, err := netip.ParseAddr(strings.TrimSpace(ip))
		if err != nil || !a.Is4() || !usable(a) {
			bad("hosts: %q: %q is not a unicast IPv4 address", h, ip)
			continue
		}
		if old, dup := s.names[name]; dup {
			bad("hosts: %q: %s already resolves to %s", h, name, old)
			continue
		}
		s.names[name] = a
	}
	if c.MTU < 576 || c.MTU > 65535 {
		bad("mtu: %d is not between 576 and 65535", c.MTU) // RFC 791: every host takes 576
	}
	s.mtu = uint32(c.MTU)
	if c.UDPIdleTimeout < time.Second {
		bad("udp_idle_timeout: %s is less than 1s", c.UDPIdleTimeout)
	}
	s.udpIdle = c.UDPIdleTimeout
	if c.DialTimeout < 10*time.Millisecond {
		bad("dial_timeout: %s is less than 10ms", c.DialTimeout)
	}
	s.dialWait = c.DialTimeout
	for _, v := range c.NAT.Allow {
		p, err := parsePrefix(v)
		if err != nil {
			bad("nat.allow: %q is not an IPv4 prefix or address", v)
			continue
		}
		s.allow = append(s.allow, p)
	}
	for _, v := range c.NAT.Protect {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(v))
		if err != nil || !ap.Addr().Unmap().Is4() || ap.Port() == 0 {
			bad("nat.protect: %q is not ipv4:port", v)
			continue
		}
		s.protect = append(s.protect, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return s, nil
}

// usable reports whether a can be a service or host address on the
// network: not unspecified, loopback, multicast, broadcast or link-local.
func usable(a netip.Addr) bool {
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() && !a.IsLinkLocalUnicast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// parsePrefix reads an IPv4 prefix or a single address (a /32).
func parsePrefix(v string) (netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return netip.Prefix{}, fmt.Errorf("not an IPv4 address")
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("not an IPv4 prefix")
	}
	return p.Masked(), nil
}

// validName reports whether s (lower case, no trailing dot) is a host name
// the responder can serve: LDH labels of 1 to 63 octets (RFC 1123 2.1;
// underscores allowed, as in service names), at most 253 octets.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// lowerASCII lower-cases the ASCII letters of s and leaves every other
// byte as it is (DNS names compare case-insensitively in ASCII only,
// RFC 4343).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Option changes how Start builds the data network.
type Option func(*options)

// DialFunc opens a host connection, as (*net.Dialer).DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Resolver is the host resolver non-local names are looked up with;
// *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	LookupCNAME(ctx context.Context, host string) (string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupNS(ctx context.Context, name string) ([]*net.NS, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

type options struct {
	dial      DialFunc
	resolver  Resolver
	log       *slog.Logger
	hostAddrs func() ([]netip.Addr, error)
}

// WithDialer makes the NAT open host connections ("tcp" or "udp" to
// ip:port) with dial instead of a net.Dialer; tests point it at loopback
// servers.
func WithDialer(dial DialFunc) Option { return func(o *options) { o.dial = dial } }

// WithResolver makes the DNS responder resolve non-local names with r
// instead of net.DefaultResolver.
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{
		dial:      (&net.Dialer{}).DialContext,
		resolver:  net.DefaultResolver,
		log:       slog.Default(),
		hostAddrs: interfaceAddrs,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// interfaceAddrs lists the host's IPv4 addresses, for nat.protect entries
// with an unspecified address.
func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), nil
}

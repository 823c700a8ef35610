package beam

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// DialFunc opens a connection to a destination, e.g. (*net.Dialer).DialContext
// or the user plane's NAT. Its context bounds the connection setup only.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configure an entry point.
type Options struct {
	// Resolver says which SIM is behind a request or connection (required).
	Resolver endorse.Resolver
	// Groups gives the SIM's group settings (required).
	Groups endorse.Groups
	// EntryPoint is the entry-point URL whose configuration keys this entry
	// point serves: scheme, host and port are compared. Default
	// HTTPEntryPoint for NewHTTPEntry (WebsiteEntryPoint for the Website
	// entry point) and TCPEntryPoint for NewTCPEntry.
	EntryPoint string
	// Dial opens connections to destinations; default a net.Dialer.
	Dial DialFunc
	// TLSConfig is the base client configuration for https and tcps
	// destinations (e.g. RootCAs); nil means the system roots. ServerName is
	// always the destination host.
	TLSConfig *tls.Config
	// DialTimeout bounds connecting to a destination, TLS included; default
	// 10 s.
	DialTimeout time.Duration
	// ResponseTimeout bounds waiting for a destination's response header
	// (HTTP); default 60 s.
	ResponseTimeout time.Duration
	// Now is the clock of X-Soracom-Timestamp; default time.Now.
	Now func() time.Time
	// Log receives refusals (debug) and failures; nil discards.
	Log *slog.Logger
}

// settings are validated Options with defaults applied.
type settings struct {
	res         endorse.Resolver
	groups      endorse.Groups
	ep          endpoint
	dial        DialFunc
	tls         *tls.Config
	dialTimeout time.Duration
	respTimeout time.Duration
	now         func() time.Time
	log         *slog.Logger
}

func (o Options) settings(defaultEntry string, schemes ...string) (settings, error) {
	if o.Resolver == nil || o.Groups == nil {
		return settings{}, errors.New("beam: options: Resolver and Groups are required")
	}
	s := settings{
		res: o.Resolver, groups: o.Groups, dial: o.Dial, tls: o.TLSConfig,
		dialTimeout: o.DialTimeout, respTimeout: o.ResponseTimeout, now: o.Now, log: o.Log,
	}
	entry := o.EntryPoint
	if entry == "" {
		entry = defaultEntry
	}
	ep, p, err := parseEndpoint(entry)
	if err != nil {
		return settings{}, fmt.Errorf("beam: options: entry point: %w", err)
	}
	if p != "" && p != "/" {
		return settings{}, fmt.Errorf("beam: options: entry point %q: has a path", entry)
	}
	ok := false
	for _, sc := range schemes {
		ok = ok || ep.scheme == sc
	}
	if !ok {
		return settings{}, fmt.Errorf("beam: options: entry point %q: scheme is not %v", entry, schemes)
	}
	s.ep = ep
	if s.dial == nil {
		s.dial = (&net.Dialer{}).DialContext
	}
	if s.dialTimeout <= 0 {
		s.dialTimeout = 10 * time.Second
	}
	if s.respTimeout <= 0 {
		s.respTimeout = 60 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// group returns the Beam settings of id's group.
func (s *settings) group(id endorse.Identity) (udr.BeamConfig, error) {
	name := id.Group
	if name == "" {
		name = udr.DefaultGroup
	}
	g, err := s.groups.Group(name)
	if err != nil {
		return nil, fmt.Errorf("beam: group %s of %s: %w", name, id.IMSI, err)
	}
	return g.Beam, nil
}

// tlsFor is the client TLS configuration for a destination host.
func (s *settings) tlsFor(host string) *tls.Config {
	var c *tls.Config
	if s.tls != nil {
		c = s.tls.Clone()
	} else {
		c = &tls.Config{}
	}
	c.ServerName = host
	return c
}

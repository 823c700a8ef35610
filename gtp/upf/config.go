package upf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/pfcp"
)

// Config is the upf section of simgate.yaml.
type Config struct {
	N4Addr            string        `yaml:"n4_addr" doc:"UDP address the PFCP (N4) server listens on, ip[:port]; the port defaults to 8805"`
	NodeID            string        `yaml:"node_id" doc:"PFCP Node ID of the UPF, an IP address or FQDN; empty: the n4_addr IP"`
	N3Addr            string        `yaml:"n3_addr" doc:"IP address of the GTP-U (N3) endpoint, advertised in the F-TEIDs the UPF allocates"`
	N3Listen          string        `yaml:"n3_listen" doc:"UDP address the GTP-U (N3) socket binds, ip[:port] (port default 2152); empty: n3_addr port 2152"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" doc:"time between PFCP Heartbeat Requests to each associated SMF; 0 disables them"`
	T1                time.Duration `yaml:"t1" doc:"how long a PFCP request waits for its response before it is sent again (TS 29.244 T1)"`
	N1                int           `yaml:"n1" doc:"how many times a PFCP request is sent again before the peer counts as lost (TS 29.244 N1)"`
	DN                dn.Config     `yaml:"dn" doc:"the data network behind the UPF: in-network services (DNS, Endorse, Beam) and the userspace NAT"`
}

// DefaultConfig is the upf configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		N4Addr:            "127.0.0.1:8805",
		N3Addr:            "127.0.0.1",
		HeartbeatInterval: pfcp.DefaultHeartbeatInterval,
		T1:                pfcp.DefaultT1,
		N1:                pfcp.DefaultN1,
		DN:                dn.DefaultConfig(),
	}
}

// Validate checks c; each error names its YAML key.
func (c Config) Validate() error {
	_, _, err := c.resolve()
	return err
}

// resolve validates c and returns the N4 address and the address the UP
// F-SEID carries (the N4 IP, or the Node ID when that is an IP).
func (c Config) resolve() (n4 netip.AddrPort, fseid netip.Addr, err error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf("upf."+format, args...)) }
	n4, perr := pfcp.ParseAddrPort(c.N4Addr)
	if strings.TrimSpace(c.N4Addr) == "" {
		bad("n4_addr: must not be empty")
	} else if perr != nil {
		bad("n4_addr: %q is not ip[:port]", c.N4Addr)
	}
	fseid = n4.Addr()
	switch {
	case c.NodeID != "":
		if _, err := pfcp.NodeIDIE(c.NodeID); err != nil {
			bad("node_id: %q is not an IP address or FQDN", c.NodeID)
		} else if fseid.IsUnspecified() {
			a, err := netip.ParseAddr(c.NodeID)
			if err != nil {
				bad("n4_addr: %q is unspecified and node_id is an FQDN: the UP F-SEID needs an IP address", c.N4Addr)
			}
			fseid = a.Unmap()
		}
	case perr == nil && fseid.IsUnspecified():
		bad("node_id: required when n4_addr (%q) is an unspecified address", c.N4Addr)
	}
	if a, err := netip.ParseAddr(c.N3Addr); err != nil || a.IsUnspecified() || a.Zone() != "" {
		bad("n3_addr: %q is not a specific IP address", c.N3Addr)
	}
	if c.HeartbeatInterval < 0 {
		bad("heartbeat_interval: %s is negative", c.HeartbeatInterval)
	}
	if c.T1 < time.Millisecond || c.T1 > time.Minute {
		bad("t1: %s is not between 1ms and 1m", c.T1)
	}
	if c.N1 < 0 || c.N1 > 20 {
		bad("n1: %d is not between 0 and 20", c.N1)
	}
	if _, err := c.N3ListenAddr(); err != nil {
		bad("n3_listen: %q is not ip[:port]", c.N3Listen)
	}
	if err := c.DN.Validate(); err != nil {
		errs = append(errs, "upf."+err.Error())
	}
	if len(errs) > 0 {
		return netip.AddrPort{}, netip.Addr{}, errors.New(strings.Join(errs, "; "))
	}
	return n4, fseid, nil
}

// N3ListenAddr is the address the N3 socket binds: n3_listen, or n3_addr
// on the GTP-U port (TS 29.281 4.4.2: 2152).
func (c Config) N3ListenAddr() (netip.AddrPort, error) {
	if strings.TrimSpace(c.N3Listen) == "" {
		a, err := netip.ParseAddr(c.N3Addr)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("upf: n3_addr %q: %w", c.N3Addr, err)
		}
		return netip.AddrPortFrom(a.Unmap(), gtpu.Port), nil
	}
	return gtpu.ParseAddrPort(c.N3Listen)
}

// n3 is the N3 address (Validate has checked it).
func (c Config) n3() netip.Addr {
	a, _ := netip.ParseAddr(c.N3Addr)
	return a.Unmap()
}

// pfcpConfig maps c onto the node configuration.
func (c Config) pfcpConfig() pfcp.Config {
	hb := c.HeartbeatInterval
	if hb == 0 {
		hb = -1 // pfcp: negative disables
	}
	n1 := c.N1
	if n1 == 0 {
		n1 = -1 // pfcp: negative means no retransmission
	}
	return pfcp.Config{NodeID: c.NodeID, T1: c.T1, N1: n1, HeartbeatInterval: hb}
}

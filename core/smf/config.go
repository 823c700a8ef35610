package smf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wmnsk/go-pfcp/ie"

	"github.com/simgate/simgate/gtp/pfcp"
)

// Config is the smf section of simgate.yaml.
type Config struct {
	N4Addr            string        `yaml:"n4_addr" doc:"UDP address the SMF's PFCP (N4) node binds, ip[:port]; port 0 picks a free port"`
	NodeID            string        `yaml:"node_id" doc:"PFCP Node ID of the SMF, an IP address or FQDN; empty: the n4_addr IP"`
	UPFAddr           string        `yaml:"upf_addr" doc:"PFCP (N4) address of the UPF, ip[:port]; the port defaults to 8805"`
	DNNs              []string      `yaml:"dnns" doc:"data networks and their UE IPv4 pools, each name[@sst[:sd]]=prefix (e.g. internet@1=10.45.0.0/16); without @ the DNN is served in every slice; the first is the default DNN"`
	AMBRUplinkKbps    uint64        `yaml:"session_ambr_uplink_kbps" doc:"session AMBR uplink of every PDU session, kbit/s"`
	AMBRDownlinkKbps  uint64        `yaml:"session_ambr_downlink_kbps" doc:"session AMBR downlink of every PDU session, kbit/s"`
	FiveQI            uint8         `yaml:"five_qi" doc:"5QI of the default QoS flow (QFI 1): a standardized non-GBR 5QI (5-10, 69, 70, 79, 80)"`
	ARPPriority       uint8         `yaml:"arp_priority_level" doc:"ARP priority level of the default QoS flow, 1 (highest) to 15"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" doc:"time between PFCP Heartbeat Requests to the UPF; 0 disables them"`
	T1                time.Duration `yaml:"t1" doc:"how long a PFCP request waits for its response before it is sent again (TS 29.244 T1)"`
	N1                int           `yaml:"n1" doc:"how many times a PFCP request is sent again before the UPF counts as lost (TS 29.244 N1)"`
}

// DefaultConfig is the smf configuration with nothing set.
func DefaultConfig() Config {
	return Config{
		N4Addr:            "127.0.0.1:0",
		UPFAddr:           "127.0.0.1:8805",
		DNNs:              []string{"internet@1=10.45.0.0/16"},
		AMBRUplinkKbps:    1_000_000,
		AMBRDownlinkKbps:  1_000_000,
		FiveQI:            9,
		ARPPriority:       8,
		HeartbeatInterval: pfcp.DefaultHeartbeatInterval,
		T1:                pfcp.DefaultT1,
		N1:                pfcp.DefaultN1,
	}
}

// maxAMBRKbps is the largest NGAP Bit Rate, 4e12 bit/s (TS 38.413 9.3.1.4).
const maxAMBRKbps = 4_000_000_000

// nonGBR5QI reports whether q is a standardized non-GBR 5QI (TS 23.501
// Table 5.7.4-1).
func nonGBR5QI(q uint8) bool {
	switch q {
	case 5, 6, 7, 8, 9, 10, 69, 70, 79, 80:
		return true
	}
	return false
}

// Validate checks c; each error names its YAML key.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// snssai is an S-NSSAI (TS 23.003 28.4.2): SST and an optional SD.
type snssai struct {
	sst   uint8
	sd    [3]byte
	hasSD bool
}

// parseSNSSAI reads the SST and the SD as the AMF passes them: sd "" or
// "ffffff" (TS 23.003 28.4.2: no SD) means none.
func parseSNSSAI(sst uint8, sd string) (snssai, error) {
	s := snssai{sst: sst}
	if sd == "" || strings.EqualFold(sd, "ffffff") {
		return s, nil
	}
	b, err := hex.DecodeString(sd)
	if err != nil || len(b) != 3 {
		return snssai{}, fmt.Errorf("SD %q is not 6 hex digits", sd)
	}
	copy(s.sd[:], b)
	s.hasSD = true
	return s, nil
}

func (s snssai) String() string {
	if !s.hasSD {
		return strconv.Itoa(int(s.sst))
	}
	return fmt.Sprintf("%d:%x", s.sst, s.sd)
}

// dnnEntry is one element of Config.DNNs.
type dnnEntry struct {
	name     string // lower case
	slice    snssai
	anySlice bool
	prefix   netip.Prefix
}

// parseDNNEntry reads "name[@sst[:sd]]=prefix".
func parseDNNEntry(s string) (dnnEntry, error) {
	lhs, rhs, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return dnnEntry{}, fmt.Errorf("%q: want name[@sst[:sd]]=prefix", s)
	}
	var e dnnEntry
	name, slice, hasSlice := strings.Cut(strings.TrimSpace(lhs), "@")
	if err := checkDNN(name); err != nil {
		return dnnEntry{}, fmt.Errorf("%q: %w", s, err)
	}
	e.name = strings.ToLower(name)
	if hasSlice {
		sstStr, sd, _ := strings.Cut(slice, ":")
		sst, err := strconv.ParseUint(sstStr, 10, 8)
		if err != nil || sst == 0 {
			return dnnEntry{}, fmt.Errorf("%q: SST %q is not 1 to 255", s, sstStr)
		}
		if e.slice, err = parseSNSSAI(uint8(sst), sd); err != nil {
			return dnnEntry{}, fmt.Errorf("%q: %w", s, err)
		}
	} else {
		e.anySlice = true
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(rhs))
	if err != nil {
		return dnnEntry{}, fmt.Errorf("%q: %q is not an IPv4 prefix", s, rhs)
	}
	if !p.Addr().Is4() || p.Bits() < minPoolBits || p.Bits() > maxPoolBits {
		return dnnEntry{}, fmt.Errorf("%q: pool %s must be an IPv4 prefix /%d to /%d", s, p, minPoolBits, maxPoolBits)
	}
	e.prefix = p.Masked()
	return e, nil
}

// checkDNN checks a DNN's network identifier: dot-separated labels of
// letters, digits and hyphens, 63 characters at most each, 100 octets in
// all once encoded (TS 23.003 9.1; TS 24.501 9.11.2.1B).
func checkDNN(name string) error {
	if name == "" {
		return errors.New("empty DNN")
	}
	if len(name)+1 > 100 {
		return fmt.Errorf("DNN %q is longer than 100 octets encoded", name)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("DNN %q has a label of %d characters (want 1 to 63)", name, len(l))
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("DNN %q: character %q is not a letter, digit or hyphen", name, c)
			}
		}
	}
	return nil
}

// resolved is a validated Config.
type resolved struct {
	upf  netip.AddrPort
	dnns []dnnEntry
}

func (c Config) resolve() (resolved, error) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf("smf."+format, args...)) }
	var r resolved

	n4, err := pfcp.ParseAddrPort(c.N4Addr)
	switch {
	case strings.TrimSpace(c.N4Addr) == "":
		bad("n4_addr: must not be empty")
	case err != nil:
		bad("n4_addr: %q is not ip[:port]", c.N4Addr)
	case c.NodeID != "":
		if _, err := pfcp.NodeIDIE(c.NodeID); err != nil {
			bad("node_id: %q is not an IP address or FQDN", c.NodeID)
		} else if _, err := netip.ParseAddr(c.NodeID); err != nil && n4.Addr().IsUnspecified() {
			bad("n4_addr: %q is unspecified and node_id is an FQDN: the CP F-SEID needs an IP address", c.N4Addr)
		}
	case n4.Addr().IsUnspecified():
		bad("node_id: required when n4_addr (%q) is an unspecified address", c.N4Addr)
	}

	if r.upf, err = pfcp.ParseAddrPort(c.UPFAddr); err != nil || strings.TrimSpace(c.UPFAddr) == "" {
		bad("upf_addr: %q is not ip[:port]", c.UPFAddr)
	} else if r.upf.Addr().IsUnspecified() || r.upf.Port() == 0 {
		bad("upf_addr: %q must name a specific address and port", c.UPFAddr)
	}

	if len(c.DNNs) == 0 {
		bad("dnns: at least one DNN is required")
	}
	for _, s := range c.DNNs {
		e, err := parseDNNEntry(s)
		if err != nil {
			bad("dnns: %v", err)
			continue
		}
		for _, o := range r.dnns {
			if o.prefix.Overlaps(e.prefix) {
				bad("dnns: pools of %q (%s) and %q (%s) overlap", o.name, o.prefix, e.name, e.prefix)
			}
			if o.name == e.name && (o.anySlice || e.anySlice || o.slice == e.slice) {
				bad("dnns: DNN %q is given twice for the same slice", e.name)
			}
		}
		r.dnns = append(r.dnns, e)
	}

	if c.AMBRUplinkKbps == 0 || c.AMBRUplinkKbps > maxAMBRKbps {
		bad("session_ambr_uplink_kbps: %d is not 1 to %d", c.AMBRUplinkKbps, uint64(maxAMBRKbps))
	}
	if c.AMBRDownlinkKbps == 0 || c.AMBRDownlinkKbps > maxAMBRKbps {
		bad("session_ambr_downlink_kbps: %d is not 1 to %d", c.AMBRDownlinkKbps, uint64(maxAMBRKbps))
	}
	if !nonGBR5QI(c.FiveQI) {
		bad("five_qi: %d is not a standardized non-GBR 5QI (5-10, 69, 70, 79, 80)", c.FiveQI)
	}
	if c.ARPPriority < 1 || c.ARPPriority > 15 {
		bad("arp_priority_level: %d is not 1 to 15", c.ARPPriority)
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
	if len(errs) > 0 {
		return resolved{}, errors.New(strings.Join(errs, "; "))
	}
	return r, nil
}

// ListenN4 binds the SMF's PFCP node at cfg.N4Addr and returns the CP
// client New takes. The node runs until ctx ends.
func ListenN4(ctx context.Context, cfg Config, log *slog.Logger) (*pfcp.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ap, err := pfcp.ParseAddrPort(cfg.N4Addr)
	if err != nil {
		return nil, fmt.Errorf("smf: n4_addr: %w", err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("smf: N4: %w", err)
	}
	c, err := StartN4(ctx, cfg, conn, log)
	if err != nil {
		conn.Close()
	}
	return c, err
}

// StartN4 runs the SMF's PFCP node on conn (for instance a socket wrapped
// for packet capture) and returns the CP client New takes. The node runs
// until ctx ends and then closes conn.
func StartN4(ctx context.Context, cfg Config, conn pfcp.PacketConn, log *slog.Logger) (*pfcp.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hb := cfg.HeartbeatInterval
	if hb == 0 {
		hb = -1 // pfcp: negative disables
	}
	n1 := cfg.N1
	if n1 == 0 {
		n1 = -1 // pfcp: negative means no retransmission
	}
	node, err := pfcp.Start(ctx, conn, pfcp.Config{
		NodeID: cfg.NodeID, T1: cfg.T1, N1: n1, HeartbeatInterval: hb,
		// TS 29.244 8.2.58: CP Function Features, no optional feature.
		Features: ie.NewCPFunctionFeatures(0),
		Logger:   log,
	})
	if err != nil {
		return nil, fmt.Errorf("smf: N4: %w", err)
	}
	c, err := pfcp.NewClient(node)
	if err != nil {
		node.Close()
		return nil, fmt.Errorf("smf: N4: %w", err)
	}
	return c, nil
}

// Package ran is the RAN load runner: it attaches many UEs at a rate and
// reports.
//
// A run builds its UEs (sim/ue) from a SIM file (core/udr.SIMFile, as
// `simgate sim import --sim-file` and `simgate sim export --with-keys` write
// it) or from a first IMSI with keys derived from a seed, gives each an IMEI,
// spreads them over one or more simulated gNBs (sim/gnb), and starts
// registrations at a steady rate (a token bucket). Each UE registers, opens
// a PDU session and stays attached until the run ends (or, with Hold, until
// its context is cancelled), then deregisters. The Report counts outcomes,
// failures by cause and per-procedure latency percentiles. The USIMs' SQN
// state goes back into the SIM file afterwards.
//
// With Token or SOCKS the UEs get a user plane: one shared userspace IP
// stack (sim/device) holds every UE's PDU session address, and the gNBs
// share one GTP-U endpoint (gnb.N3) that carries the UEs' packets to and
// from the UPF. With Token each UE, once its session is up, fetches an
// Endorse token over it (names resolved by the UE through the network's
// DNS), verifies it (endorse/verify) and checks that it names the UE's own
// IMSI and IMEI; the Report adds the tokens and their latency. With SOCKS a
// SOCKS5 proxy speaks as the attached UEs, chosen by IMSI.
package ran

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/suci"
)

// Config is the ran section of the configuration: every leaf is a YAML key
// (ran.<path>) and a flag.
type Config struct {
	AMF      string  `yaml:"amf" doc:"address of the AMF's N2 endpoint, host or host:port"`
	UEs      int     `yaml:"ues" doc:"UEs to attach; 0 with a SIM file means all its SIMs"`
	Rate     float64 `yaml:"rate" doc:"registrations started per second; 0 means as fast as possible"`
	Burst    int     `yaml:"burst" doc:"registrations the rate limiter lets start at once after a pause (at least 5 ms worth of the rate)"`
	SIMFile  string  `yaml:"sim_file" doc:"SIM file with the UEs' keys (simgate sim import --sim-file / sim export --with-keys); SQNs are written back to it"`
	IMSIFrom string  `yaml:"imsi_from" doc:"without a SIM file: first IMSI of consecutive UEs, with K and OPc derived from seed as 'simgate sim import' does for k: derive, opc: derive"`
	Seed     string  `yaml:"seed" doc:"seed of the derived K and OPc of imsi_from UEs"`
	GNBs     int     `yaml:"gnbs" doc:"simulated gNBs the UEs are spread over, each with its own N2 association"`
	Hold     bool    `yaml:"hold" doc:"keep the UEs attached until interrupted, then deregister them"`
	Session  bool    `yaml:"session" doc:"open a PDU session after registration"`
	// Timeout bounds each procedure of a UE.
	Timeout time.Duration `yaml:"timeout" doc:"time allowed for each UE procedure (registration, PDU session, deregistration)"`

	MCC string `yaml:"mcc" doc:"PLMN of the gNBs' cell: mobile country code, 3 digits"`
	MNC string `yaml:"mnc" doc:"PLMN of the gNBs' cell: mobile network code, 2 or 3 digits"`
	TAC uint32 `yaml:"tac" doc:"tracking area code of the gNBs' cell (24 bits)"`
	SST uint8  `yaml:"sst" doc:"slice/service type the UEs request and the gNBs support"`
	SD  string `yaml:"sd" doc:"slice differentiator, 6 hex digits, or empty"`
	DNN string `yaml:"dnn" doc:"data network name of the PDU sessions"`
	// N3 is the gNBs' user-plane address.
	N3 string `yaml:"n3" doc:"IPv4 address the gNBs give the core for downlink GTP-U; with token or socks the gNBs' GTP-U socket binds it, port 2152, so it must differ from the UPF's n3_addr on one host"`
	// DNS is the DNS server of the UEs' PDU sessions.
	DNS string `yaml:"dns" doc:"IPv4 address of the DNS server the UEs use over their PDU sessions (the data network's responder, gtp/dn dns_addr)"`

	// Token has each UE fetch an Endorse token over its PDU session.
	Token       bool   `yaml:"token" doc:"after its PDU session each UE fetches a token from token_url through the user plane, verifies it against jwks_url and checks its IMSI and IMEI"`
	TokenURL    string `yaml:"token_url" doc:"URL the UEs fetch their token from, resolved by the UEs through the network's DNS"`
	JWKSURL     string `yaml:"jwks_url" doc:"JWK Set the tokens are verified against: the host key endpoint of the network (http.addr + /.well-known/jwks.json)"`
	TokenIssuer string `yaml:"token_issuer" doc:"iss claim the tokens must carry (the network's endorse.issuer)"`
	// SOCKS serves SOCKS5 for the attached UEs.
	SOCKS string `yaml:"socks" doc:"host address of a SOCKS5 proxy speaking as the attached UEs, the SOCKS user name picking the UE by IMSI (use with hold); empty: none"`
	// GNBID is the first gNB's ID; the others count up.
	GNBID uint32 `yaml:"gnb_id" doc:"gNB ID of the first gNB (32 bits); further gNBs count up"`
	// IMEITAC is the type allocation code of the IMEIs given to UEs whose
	// SIM is not IMEI-locked; the serial number is the IMSI's last 6 digits.
	IMEITAC string `yaml:"imei_tac" doc:"type allocation code (8 digits) of the IMEIs given to UEs of SIMs without an IMEI lock"`

	SUCI      SUCIConfig `yaml:"suci" doc:"SUCI calculation by the USIMs"`
	Ciphering []string   `yaml:"ciphering" doc:"NAS ciphering algorithms the UEs support: NEA0, NEA1, NEA2, NEA3"`
	Integrity []string   `yaml:"integrity" doc:"NAS integrity algorithms the UEs support: NIA1, NIA2, NIA3"`

	N2 n2.Config `yaml:"n2" doc:"N2 (NGAP) transport of the gNBs"`
}

// SUCIConfig is how the USIMs conceal the SUPI (TS 33.501 6.12.2).
type SUCIConfig struct {
	Scheme           string `yaml:"scheme" doc:"protection scheme: null, A (X25519) or B (P-256)"`
	KeyID            uint8  `yaml:"key_id" doc:"home network public key identifier (1..255) for schemes A and B"`
	PublicKey        string `yaml:"public_key" doc:"home network public key, hex, for schemes A and B"`
	RoutingIndicator string `yaml:"routing_indicator" doc:"routing indicator, 1 to 4 digits"`
}

// DefaultConfig is a run of flow.md's network: PLMN 001/01, TAC 1, SST 1,
// DNN internet, AMF on 127.0.0.1, one gNB, null-scheme SUCI.
func DefaultConfig() Config {
	return Config{
		AMF: "127.0.0.1", Rate: 100, Burst: 1, GNBs: 1, Session: true, Timeout: 10 * time.Second,
		MCC: "001", MNC: "01", TAC: 1, SST: 1, DNN: "internet", N3: "127.0.0.2", GNBID: 1,
		DNS: "100.127.0.53", TokenURL: "http://endorse.soracom.io/",
		JWKSURL: "http://127.0.0.1:8080/.well-known/jwks.json", TokenIssuer: "https://soracom.io",
		IMEITAC: "35693803", Seed: "simgate",
		SUCI:      SUCIConfig{Scheme: "null", RoutingIndicator: "0"},
		Ciphering: []string{"NEA0", "NEA1", "NEA2", "NEA3"},
		Integrity: []string{"NIA1", "NIA2", "NIA3"},
		N2:        n2.Config{Transport: n2.TransportAuto},
	}
}

// Validate checks the configuration; errors name the YAML keys.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ran."+format, args...)) }
	if strings.TrimSpace(c.AMF) == "" {
		add("amf: empty")
	}
	if c.UEs < 0 {
		add("ues: %d is negative", c.UEs)
	}
	if c.Rate < 0 {
		add("rate: %v is negative", c.Rate)
	}
	if c.Burst < 0 {
		add("burst: %d is negative", c.Burst)
	}
	if c.GNBs < 1 || c.GNBs > 256 {
		add("gnbs: %d: want 1..256", c.GNBs)
	}
	if c.Timeout <= 0 {
		add("timeout: %v: want a positive duration", c.Timeout)
	}
	if c.IMSIFrom != "" {
		if err := udr.ValidateIMSI(c.IMSIFrom, len(c.MNC)); err != nil {
			add("imsi_from: %v", err)
		}
	}
	if c.SIMFile != "" && c.IMSIFrom != "" {
		add("sim_file and imsi_from: give one, not both")
	}
	if len(c.MCC) != 3 || !digits(c.MCC) {
		add("mcc: %q: want 3 digits", c.MCC)
	}
	if (len(c.MNC) != 2 && len(c.MNC) != 3) || !digits(c.MNC) {
		add("mnc: %q: want 2 or 3 digits", c.MNC)
	}
	if c.TAC >= 1<<24 {
		add("tac: %#x exceeds 24 bits", c.TAC)
	}
	if c.SST == 0 {
		add("sst: 0 is not a standardized or operator slice type here; want 1..255")
	}
	if c.SD != "" && (len(c.SD) != 6 || !isHex(c.SD)) {
		add("sd: %q: want 6 hex digits", c.SD)
	}
	if c.DNN == "" || len(c.DNN) > 100 {
		add("dnn: %q: want 1 to 100 characters", c.DNN)
	}
	if a, err := netip.ParseAddr(c.N3); err != nil || !a.Is4() {
		add("n3: %q: want an IPv4 address", c.N3)
	}
	if a, err := netip.ParseAddr(c.DNS); c.DNS != "" && (err != nil || !a.Is4()) {
		add("dns: %q: want an IPv4 address", c.DNS)
	}
	if c.Token {
		if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("token_url: %q: want an http or https URL", c.TokenURL)
		}
		if strings.TrimSpace(c.TokenIssuer) == "" {
			add("token_issuer: empty")
		}
	}
	if (c.Token || c.SOCKS != "") && !c.Session {
		add("session: token and socks need the UEs' PDU sessions")
	}
	if c.SOCKS != "" {
		if _, _, err := net.SplitHostPort(c.SOCKS); err != nil {
			add("socks: %q: want host:port", c.SOCKS)
		}
	}
	if len(c.IMEITAC) != 8 || !digits(c.IMEITAC) {
		add("imei_tac: %q: want 8 digits", c.IMEITAC)
	}
	if _, err := c.SUCI.params(); err != nil {
		add("suci.%v", err)
	}
	if _, err := algorithmIDs(c.Ciphering, "NEA", 0); err != nil {
		add("ciphering: %v", err)
	}
	if _, err := algorithmIDs(c.Integrity, "NIA", 1); err != nil {
		add("integrity: %v", err)
	}
	if err := c.N2.Validate(); err != nil {
		add("n2: %v", err)
	}
	return errors.Join(errs...)
}

// suciParams is the checked SUCI configuration.
type suciParams struct {
	scheme suci.Scheme
	key    *suci.PublicKey
	keyID  uint8
	ri     string
}

func (s SUCIConfig) params() (suciParams, error) {
	var p suciParams
	sch, err := suci.ParseScheme(s.Scheme)
	if err != nil {
		return p, fmt.Errorf("scheme: %w", err)
	}
	p.scheme, p.keyID, p.ri = sch, s.KeyID, s.RoutingIndicator
	if p.ri == "" {
		p.ri = "0"
	}
	if len(p.ri) > 4 || !digits(p.ri) {
		return p, fmt.Errorf("routing_indicator: %q: want 1 to 4 digits", s.RoutingIndicator)
	}
	switch sch {
	case suci.SchemeNull:
		if s.PublicKey != "" || s.KeyID != 0 {
			return p, errors.New("public_key, key_id: the null scheme takes no home network key")
		}
	case suci.SchemeProfileA, suci.SchemeProfileB:
		if s.KeyID == 0 {
			return p, fmt.Errorf("key_id: scheme %v needs a key id 1..255", sch)
		}
		if p.key, err = suci.ParsePublicKey(sch, s.PublicKey); err != nil {
			return p, fmt.Errorf("public_key: %w", err)
		}
	default:
		return p, fmt.Errorf("scheme: %v cannot conceal; want null, A or B", sch)
	}
	return p, nil
}

// algorithmIDs turns "NEA0".."NEA3" or "NIA1".."NIA3" into identities.
func algorithmIDs(names []string, prefix string, min int) ([]uint8, error) {
	if len(names) == 0 {
		return nil, errors.New("empty: the UEs need at least one")
	}
	var out []uint8
	for _, n := range names {
		u := strings.ToUpper(strings.TrimSpace(n))
		if len(u) != len(prefix)+1 || !strings.HasPrefix(u, prefix) || u[len(prefix)] < byte('0'+min) || u[len(prefix)] > '3' {
			return nil, fmt.Errorf("%q: want %s%d to %s3", n, prefix, min, prefix)
		}
		out = append(out, u[len(prefix)]-'0')
	}
	return out, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

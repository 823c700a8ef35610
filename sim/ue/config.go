package ue

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/sim/aka"
	"github.com/simgate/simgate/sim/kdf"
	"github.com/simgate/simgate/sim/suci"
)

// Defaults of the core/RAN contract.
const (
	DefaultDNN = "internet"
	DefaultSST = 1
)

// Config describes one UE: its USIM, its device identity, its capabilities
// and what it asks for.
type Config struct {
	// IMSI is the USIM's IMSI, MCC + MNC + MSIN; MNCLen (2 or 3, 0 means 2)
	// says how long its MNC is (EF_AD, TS 31.102 4.2.18).
	IMSI   string
	MNCLen int

	// K and OPc are the USIM's long-term secrets (TS 33.102 6.3, MILENAGE).
	K, OPc [16]byte
	// USIM sets the USIM's SQN checks (IND length, Δ, L).
	USIM aka.USIMConfig
	// USIMState is a sequence number state saved from [UE.USIMState]. If it
	// is nil the USIM starts from SQN (see [StateFromSQN]); zero is a new
	// USIM.
	USIMState *aka.State
	SQN       uint64

	// SUCI is what the USIM provisions for SUCI calculation.
	SUCI SUCIConfig

	// IMEISV is the device's IMEISV, 16 digits: TAC (8), SNR (6), SVN (2)
	// (TS 23.003 6.2.2). The IMEI is its first 14 digits and the Luhn check
	// digit.
	IMEISV string

	// ServingMCC and ServingMNC are the PLMN of the cell the UE camps on;
	// they name the serving network in the key derivations (TS 33.501
	// 6.1.1.4). Empty means the IMSI's home PLMN.
	ServingMCC, ServingMNC string

	// Ciphering and Integrity are the 5G-EA and 5G-IA algorithm identities
	// (0 to 3) the UE supports and advertises in its UE security capability
	// (TS 24.501 9.11.3.54). nil means {0, 1, 2, 3} and {1, 2, 3}. The UE
	// never accepts 5G-IA0 in a SECURITY MODE COMMAND (TS 24.501 5.4.2.3:
	// only for emergency services, which it does not use).
	Ciphering []uint8
	Integrity []uint8

	// DNN and SNSSAI are what the UE requests for PDU sessions, and SNSSAI
	// is its requested NSSAI. "" and the zero value mean DefaultDNN and
	// SST DefaultSST without SD.
	DNN    string
	SNSSAI SNSSAI

	// Misbehave makes the UE deviate from the protocol on purpose.
	Misbehave Misbehave

	// Rand is the random source for SUCI ephemeral keys; nil means
	// crypto/rand. A seeded reader makes a UE's messages reproducible.
	Rand io.Reader
	// Logger receives what the UE discards and why; nil discards.
	Logger *slog.Logger
	// OnEvent, if set, is called for each Event, after the call that caused
	// it has updated the UE's state and from the same goroutine.
	OnEvent func(Event)
}

// SUCIConfig is the USIM's SUCI calculation information (EF_SUCI_Calc_Info
// and EF_Routing_Indicator, TS 31.102 4.4.11.8, 4.4.11.11).
type SUCIConfig struct {
	// Scheme is the protection scheme: suci.SchemeNull, SchemeProfileA or
	// SchemeProfileB.
	Scheme suci.Scheme
	// HNPublicKey is the home network public key of Scheme's profile, with
	// identifier KeyID (1 to 255); both unused with the null scheme.
	HNPublicKey *suci.PublicKey
	KeyID       uint8
	// RoutingIndicator is 1 to 4 digits; "" means "0".
	RoutingIndicator string
}

// SNSSAI is an S-NSSAI (TS 23.003 28.4.2): a slice/service type and an
// optional slice differentiator.
type SNSSAI struct {
	SST uint8
	// SD is 6 hex digits, or "" for none.
	SD string
}

func (s SNSSAI) String() string {
	if s.SD == "" {
		return fmt.Sprintf("sst %d", s.SST)
	}
	return fmt.Sprintf("sst %d sd %s", s.SST, s.SD)
}

// Misbehave lists deliberate protocol violations, for testing the core.
type Misbehave struct {
	// WrongRES sends a RES* with one bit flipped in AUTHENTICATION RESPONSE.
	WrongRES bool
	// BadAUTN corrupts the MAC of every AUTN before the USIM checks it, so
	// that the USIM reports a MAC failure (AUTHENTICATION FAILURE #20).
	BadAUTN bool
	// WrongIMEI reports the IMEISV of another device (another SNR) in
	// SECURITY MODE COMPLETE and IDENTITY RESPONSE.
	WrongIMEI bool
	// NoIMEI omits the IMEISV from SECURITY MODE COMPLETE even when the
	// network requests it, and answers an IDENTITY REQUEST for IMEI or
	// IMEISV with "no identity".
	NoIMEI bool
	// ReplayNAS sends every integrity protected message that Handle returns
	// twice: the second copy is a replay with the same NAS COUNT.
	ReplayNAS bool
	// TamperMAC corrupts the MAC of SECURITY MODE COMPLETE.
	TamperMAC bool
}

// FromCard returns the Config of a SIM in a SIM file written by
// `simgate sim export` (core/udr): IMSI, MNC length, K, OPc and SQN, and, if
// the SIM is IMEI-locked, an IMEISV made of the lock's IMEI and software
// version "00". The caller adds the rest (SUCI keys, IMEISV of an unlocked
// SIM).
func FromCard(c udr.SIMCard) Config {
	cfg := Config{IMSI: c.IMSI, MNCLen: c.MNCLen, K: c.K, OPc: c.OPc, SQN: c.SQN}
	if len(c.IMEI) == 15 {
		cfg.IMEISV = c.IMEI[:14] + "00"
	}
	return cfg
}

// StateFromSQN returns the USIM state of a USIM that has accepted sqn and
// nothing after it: SEQ_MS(IND) = SEQ of sqn (TS 33.102 C.1.1.1, C.2.2),
// with IND indBits long (0 means aka.DefaultINDBits).
func StateFromSQN(sqn uint64, indBits int) (aka.State, error) {
	if indBits == 0 {
		indBits = aka.DefaultINDBits
	}
	if indBits < 1 || indBits > aka.MaxINDBits {
		return aka.State{}, fmt.Errorf("ue: IND length %d bits: want 1..%d", indBits, aka.MaxINDBits)
	}
	if sqn >= 1<<48 {
		return aka.State{}, fmt.Errorf("ue: SQN %#x exceeds 48 bits", sqn)
	}
	st := aka.State{INDBits: indBits, SEQ: make([]uint64, 1<<indBits)}
	st.SEQ[sqn&(1<<indBits-1)] = sqn >> indBits
	return st, nil
}

// IMEIOf returns the IMEI of an IMEISV: its TAC and SNR and the Luhn check
// digit (TS 23.003 6.2.1, Annex B).
func IMEIOf(imeisv string) (string, error) {
	if err := checkIMEISV(imeisv); err != nil {
		return "", err
	}
	return imeisv[:14] + string(rune('0'+udr.IMEICheckDigit(imeisv[:14]))), nil
}

// checkIMEISV: TS 23.003 6.2.2: 16 digits, SVN 99 reserved.
func checkIMEISV(s string) error {
	if len(s) != 16 || !isDigits(s) {
		return fmt.Errorf("ue: IMEISV %q: want 16 digits", s)
	}
	if s[14:] == "99" {
		return fmt.Errorf("ue: IMEISV %q: software version number 99 is reserved", s)
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// algorithms turns a list of algorithm identities into a bitmap, bit i for
// algorithm i.
func algorithms(kind string, ids []uint8, def uint8) (uint8, error) {
	if ids == nil {
		return def, nil
	}
	var m uint8
	for _, id := range ids {
		if id > 3 {
			return 0, fmt.Errorf("ue: %s algorithm %d: want 0 to 3", kind, id)
		}
		m |= 1 << id
	}
	return m, nil
}

// settings is what a UE keeps of its Config: shared, read-only strings and
// pointers plus the checked values.
type settings struct {
	supi    suci.SUPI
	supiStr string
	suci    suci.Params
	snn     string
	imeisv  string
	ea, ia  uint8 // bitmaps of supported algorithm identities
	dnn     string
	snssai  SNSSAI
	misbe   Misbehave
	rand    io.Reader
	log     *slog.Logger
	onEvent func(Event)
}

func (c *Config) settings() (*settings, error) {
	mncLen := c.MNCLen
	if mncLen == 0 {
		mncLen = 2
	}
	supi, err := suci.NewIMSI(c.IMSI, mncLen)
	if err != nil {
		return nil, fmt.Errorf("ue: %w", err)
	}
	s := &settings{supi: supi, supiStr: supi.String(), imeisv: c.IMEISV, dnn: c.DNN, snssai: c.SNSSAI,
		misbe: c.Misbehave, rand: c.Rand, log: c.Logger, onEvent: c.OnEvent}
	if err := checkIMEISV(c.IMEISV); err != nil {
		return nil, err
	}
	s.suci = suci.Params{
		RoutingIndicator: c.SUCI.RoutingIndicator,
		Scheme:           c.SUCI.Scheme,
		KeyID:            c.SUCI.KeyID,
		HNPublicKey:      c.SUCI.HNPublicKey,
	}
	switch c.SUCI.Scheme {
	case suci.SchemeNull:
		if c.SUCI.KeyID != 0 {
			return nil, fmt.Errorf("ue: SUCI null scheme with home network key id %d: want 0", c.SUCI.KeyID)
		}
	case suci.SchemeProfileA, suci.SchemeProfileB:
		if c.SUCI.HNPublicKey == nil || c.SUCI.HNPublicKey.Scheme() != c.SUCI.Scheme {
			return nil, fmt.Errorf("ue: SUCI scheme %v needs a Profile %v home network public key", c.SUCI.Scheme, c.SUCI.Scheme)
		}
		if c.SUCI.KeyID == 0 {
			return nil, fmt.Errorf("ue: SUCI scheme %v needs a home network key id 1 to 255", c.SUCI.Scheme)
		}
	default:
		return nil, fmt.Errorf("ue: SUCI protection scheme %v: want null, A or B", c.SUCI.Scheme)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mcc, mnc := c.ServingMCC, c.ServingMNC
	if mcc == "" && mnc == "" {
		mcc, mnc = supi.MCC, supi.MNC
	}
	if s.snn, err = kdf.ServingNetworkName(mcc, mnc); err != nil {
		return nil, fmt.Errorf("ue: serving network: %w", err)
	}
	if s.ea, err = algorithms("ciphering", c.Ciphering, 0b1111); err != nil {
		return nil, err
	}
	if s.ia, err = algorithms("integrity", c.Integrity, 0b1110); err != nil {
		return nil, err
	}
	if s.ia&^1 == 0 {
		return nil, fmt.Errorf("ue: no integrity algorithm other than 5G-IA0: the UE could never accept a SECURITY MODE COMMAND")
	}
	if s.ea == 0 {
		return nil, fmt.Errorf("ue: no ciphering algorithm")
	}
	if s.dnn == "" {
		s.dnn = DefaultDNN
	}
	if len(s.dnn) > 100 {
		return nil, fmt.Errorf("ue: DNN of %d octets: want at most 100 (TS 24.501 9.11.2.1B)", len(s.dnn))
	}
	if s.snssai == (SNSSAI{}) {
		s.snssai.SST = DefaultSST
	}
	if s.snssai.SD != "" {
		if b, err := hex.DecodeString(s.snssai.SD); err != nil || len(b) != 3 {
			return nil, fmt.Errorf("ue: S-NSSAI SD %q: want 6 hex digits", s.snssai.SD)
		}
	}
	return s, nil
}

package pfcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/wmnsk/go-pfcp/ie"
)

// ntpEpoch is the origin of the Recovery Time Stamp (TS 29.244 8.2.65: NTP
// seconds since 1900-01-01 UTC).
var ntpEpoch = time.Date(1900, time.January, 1, 0, 0, 0, 0, time.UTC)

// ntpSeconds is t as a Recovery Time Stamp value (32-bit NTP seconds).
func ntpSeconds(t time.Time) uint32 { return uint32(t.Sub(ntpEpoch) / time.Second) }

// ntpTime converts a Recovery Time Stamp value back to a time in era 0.
func ntpTime(s uint32) time.Time { return ntpEpoch.Add(time.Duration(s) * time.Second) }

// recoveryIE is a Recovery Time Stamp IE (TS 29.244 8.2.65).
func recoveryIE(s uint32) *ie.IE { return ie.NewUint32IE(ie.RecoveryTimeStamp, s) }

// parseRecovery reads a Recovery Time Stamp IE as NTP seconds.
func parseRecovery(i *ie.IE) (uint32, error) {
	if i == nil {
		return 0, missing(ie.RecoveryTimeStamp)
	}
	if len(i.Payload) < 4 {
		return 0, &IEError{IE: ie.RecoveryTimeStamp, Cause: CauseInvalidLength}
	}
	return binary.BigEndian.Uint32(i.Payload), nil
}

// NodeIDIE encodes a Node ID (TS 29.244 8.2.38): an IPv4 or IPv6 literal, or
// else an FQDN (TS 23.003 19.4.2 labels, no trailing root label).
func NodeIDIE(id string) (*ie.IE, error) {
	if a, err := netip.ParseAddr(id); err == nil {
		a = a.Unmap()
		if a.Zone() != "" {
			return nil, fmt.Errorf("pfcp: node ID %q: zoned address", id)
		}
		if a.Is4() {
			v := a.As4()
			return ie.New(ie.NodeID, append([]byte{ie.NodeIDIPv4Address}, v[:]...)), nil
		}
		v := a.As16()
		return ie.New(ie.NodeID, append([]byte{ie.NodeIDIPv6Address}, v[:]...)), nil
	}
	fqdn := strings.TrimSuffix(id, ".")
	if fqdn == "" || len(fqdn) > 253 {
		return nil, fmt.Errorf("pfcp: node ID %q: not an IP address or FQDN", id)
	}
	b := []byte{ie.NodeIDFQDN}
	for _, label := range strings.Split(fqdn, ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("pfcp: node ID %q: bad FQDN label %q", id, label)
		}
		if !isLDH(label) {
			return nil, fmt.Errorf("pfcp: node ID %q: bad character in FQDN label %q", id, label)
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return ie.New(ie.NodeID, b), nil
}

// isLDH reports whether a DNS label is letters, digits and hyphens
// (RFC 1123 2.1).
func isLDH(label string) bool {
	for _, c := range []byte(label) {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// ParseNodeID decodes a Node ID IE (TS 29.244 8.2.38) strictly.
func ParseNodeID(i *ie.IE) (string, error) {
	if i == nil {
		return "", missing(ie.NodeID)
	}
	p := i.Payload
	if len(p) < 1 {
		return "", incorrect(ie.NodeID, errors.New("empty"))
	}
	switch p[0] & 0x0f { // the upper 4 bits are spare
	case ie.NodeIDIPv4Address:
		if len(p) != 5 {
			return "", incorrect(ie.NodeID, fmt.Errorf("IPv4 node ID of %d octets", len(p)-1))
		}
		return netip.AddrFrom4([4]byte(p[1:5])).String(), nil
	case ie.NodeIDIPv6Address:
		if len(p) != 17 {
			return "", incorrect(ie.NodeID, fmt.Errorf("IPv6 node ID of %d octets", len(p)-1))
		}
		return netip.AddrFrom16([16]byte(p[1:17])).String(), nil
	case ie.NodeIDFQDN:
		var labels []string
		for b := p[1:]; len(b) > 0; {
			n := int(b[0])
			if n == 0 && len(b) == 1 {
				break // tolerate a trailing root label
			}
			if n == 0 || n > 63 || 1+n > len(b) {
				return "", incorrect(ie.NodeID, errors.New("bad FQDN label length"))
			}
			label := string(b[1 : 1+n])
			if !isLDH(label) {
				return "", incorrect(ie.NodeID, fmt.Errorf("bad character in FQDN label %q", label))
			}
			labels = append(labels, label)
			b = b[1+n:]
		}
		if len(labels) == 0 {
			return "", incorrect(ie.NodeID, errors.New("empty FQDN"))
		}
		return strings.Join(labels, "."), nil
	default:
		return "", incorrect(ie.NodeID, fmt.Errorf("node ID type %d", p[0]&0x0f))
	}
}

// FSEID is a Fully qualified SEID (TS 29.244 8.2.37), IPv4 or IPv6.
type FSEID struct {
	SEID uint64
	Addr netip.Addr
}

// IE encodes f.
func (f FSEID) IE() *ie.IE {
	v4, v6 := ipv4v6(f.Addr)
	return ie.NewFSEID(f.SEID, v4, v6)
}

// ParseFSEID decodes an F-SEID IE; an address is required.
func ParseFSEID(i *ie.IE) (FSEID, error) {
	if i == nil {
		return FSEID{}, missing(ie.FSEID)
	}
	f, err := i.FSEID()
	if err != nil {
		return FSEID{}, incorrect(ie.FSEID, err)
	}
	out := FSEID{SEID: f.SEID}
	switch {
	case f.HasIPv4():
		out.Addr, _ = netip.AddrFromSlice(f.IPv4Address)
	case f.HasIPv6():
		out.Addr, _ = netip.AddrFromSlice(f.IPv6Address)
	default:
		return FSEID{}, incorrect(ie.FSEID, errors.New("neither V4 nor V6 set"))
	}
	return out, nil
}

// FTEID is one end of a GTP-U tunnel: TEID and IP address (TS 29.244 8.2.3).
// The zero value means "none".
type FTEID struct {
	TEID uint32
	Addr netip.Addr
}

// IsZero reports whether f is unset.
func (f FTEID) IsZero() bool { return f.TEID == 0 && !f.Addr.IsValid() }

func (f FTEID) String() string { return fmt.Sprintf("%#08x@%s", f.TEID, f.Addr) }

// IE encodes f as an F-TEID IE.
func (f FTEID) IE() *ie.IE {
	v4, v6 := ipv4v6(f.Addr)
	var flags uint8
	if v4 != nil {
		flags |= 0x01 // V4
	}
	if v6 != nil {
		flags |= 0x02 // V6
	}
	return ie.NewFTEID(flags, f.TEID, v4, v6, 0)
}

// fteidChoose is an F-TEID with CH set: the UP function allocates it
// (TS 29.244 5.5.3, 8.2.3). chooseID > 0 adds a CHOOSE ID.
func fteidChoose(v6 bool, chooseID uint8) *ie.IE {
	flags := uint8(0x04 | 0x01) // CH, V4
	if v6 {
		flags = 0x04 | 0x02
	}
	if chooseID != 0 {
		flags |= 0x08 // CHID
	}
	return ie.NewFTEID(flags, 0, nil, nil, chooseID)
}

// localFTEID is a decoded PDI F-TEID: given, or to be chosen by the UP.
type localFTEID struct {
	FTEID
	choose   bool
	chooseID uint8
	v6       bool
}

func parseFTEID(i *ie.IE) (localFTEID, error) {
	f, err := i.FTEID()
	if err != nil {
		return localFTEID{}, incorrect(ie.FTEID, err)
	}
	if f.HasCh() {
		if !f.HasIPv4() && !f.HasIPv6() {
			return localFTEID{}, incorrect(ie.FTEID, errors.New("CH without V4 or V6"))
		}
		return localFTEID{choose: true, chooseID: f.ChooseID, v6: !f.HasIPv4()}, nil
	}
	out := localFTEID{FTEID: FTEID{TEID: f.TEID}}
	switch {
	case f.HasIPv4():
		out.Addr, _ = netip.AddrFromSlice(f.IPv4Address)
	case f.HasIPv6():
		out.Addr, _ = netip.AddrFromSlice(f.IPv6Address)
	default:
		return localFTEID{}, incorrect(ie.FTEID, errors.New("neither V4 nor V6 set"))
	}
	return out, nil
}

// ParseFTEID decodes an F-TEID IE that carries a TEID and address (as in a
// Created PDR); an F-TEID with CH set is an error here.
func ParseFTEID(i *ie.IE) (FTEID, error) {
	if i == nil {
		return FTEID{}, missing(ie.FTEID)
	}
	f, err := parseFTEID(i)
	if err != nil {
		return FTEID{}, err
	}
	if f.choose {
		return FTEID{}, incorrect(ie.FTEID, errors.New("CH set in an allocated F-TEID"))
	}
	return f.FTEID, nil
}

func ipv4v6(a netip.Addr) (v4, v6 net.IP) {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		return net.IP(b[:]), nil
	case a.Is6():
		b := a.As16()
		return nil, net.IP(b[:])
	}
	return nil, nil
}

// UserID is the User ID IE (TS 29.244 8.2.101): the subscriber the session
// belongs to. Empty fields are left out.
type UserID struct {
	IMSI   string // 5..15 digits (TS 23.003 2.2)
	IMEI   string // 15 digits, or 16 for an IMEISV (TS 23.003 6.2)
	MSISDN string // up to 15 digits (E.164)
	NAI    string
}

// IsZero reports whether u carries nothing.
func (u UserID) IsZero() bool { return u == UserID{} }

// Validate checks the digit strings before they are TBCD-encoded.
func (u UserID) Validate() error {
	check := func(name, s string, minLen, maxLen int) error {
		if s == "" {
			return nil
		}
		if len(s) < minLen || len(s) > maxLen {
			return fmt.Errorf("pfcp: user ID: %s %q: want %d to %d digits", name, s, minLen, maxLen)
		}
		for _, c := range []byte(s) {
			if c < '0' || c > '9' {
				return fmt.Errorf("pfcp: user ID: %s %q: not all digits", name, s)
			}
		}
		return nil
	}
	if err := check("IMSI", u.IMSI, 5, 15); err != nil {
		return err
	}
	if err := check("IMEI", u.IMEI, 15, 16); err != nil {
		return err
	}
	if err := check("MSISDN", u.MSISDN, 1, 15); err != nil {
		return err
	}
	if len(u.NAI) > 255 {
		return fmt.Errorf("pfcp: user ID: NAI of %d octets (max 255)", len(u.NAI))
	}
	return nil
}

// IE encodes u; it returns nil, nil when u is empty.
func (u UserID) IE() (*ie.IE, error) {
	if u.IsZero() {
		return nil, nil
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	// TS 29.244 8.2.101 octet 5: bit 1 IMSIF, bit 2 IMEIF, bit 3 MSISDNF, bit 4 NAIF.
	var flags uint8
	if u.IMSI != "" {
		flags |= 0x01
	}
	if u.IMEI != "" {
		flags |= 0x02
	}
	if u.MSISDN != "" {
		flags |= 0x04
	}
	if u.NAI != "" {
		flags |= 0x08
	}
	return ie.NewUserID(flags, u.IMSI, u.IMEI, u.MSISDN, u.NAI), nil
}

// ParseUserID decodes a User ID IE. IMSI, IMEI and MSISDN are TBCD digits
// with an 'f' filler in the last high nibble when the count is odd
// (TS 29.244 8.2.101, as the IMSI of TS 29.274 8.3).
func ParseUserID(i *ie.IE) (UserID, error) {
	bad := func(err error) (UserID, error) {
		return UserID{}, &IEError{IE: ie.UserID, Cause: CauseMandatoryIEIncorrect, Err: err}
	}
	if i == nil {
		return UserID{}, missing(ie.UserID)
	}
	p := i.Payload
	if len(p) < 1 {
		return bad(errors.New("empty"))
	}
	flags := p[0]
	p = p[1:]
	field := func(name string) ([]byte, error) {
		if len(p) < 1 {
			return nil, fmt.Errorf("%s length missing", name)
		}
		n := int(p[0])
		if 1+n > len(p) {
			return nil, fmt.Errorf("%s of %d octets overruns the IE", name, n)
		}
		v := p[1 : 1+n]
		p = p[1+n:]
		return v, nil
	}
	var u UserID
	for _, f := range []struct {
		bit  uint8
		name string
		dst  *string
		tbcd bool
	}{{0x01, "IMSI", &u.IMSI, true}, {0x02, "IMEI", &u.IMEI, true}, {0x04, "MSISDN", &u.MSISDN, true}, {0x08, "NAI", &u.NAI, false}} {
		if flags&f.bit == 0 {
			continue
		}
		v, err := field(f.name)
		if err != nil {
			return bad(err)
		}
		if !f.tbcd {
			*f.dst = string(v)
			continue
		}
		s, err := decodeTBCD(v)
		if err != nil {
			return bad(fmt.Errorf("%s: %w", f.name, err))
		}
		*f.dst = s
	}
	return u, nil
}

// decodeTBCD decodes telephony BCD: the low nibble is the first digit; 0xf
// may only fill the last high nibble.
func decodeTBCD(b []byte) (string, error) {
	out := make([]byte, 0, 2*len(b))
	for i, x := range b {
		lo, hi := x&0x0f, x>>4
		if lo > 9 {
			return "", fmt.Errorf("nibble %#x is not a digit", lo)
		}
		out = append(out, '0'+lo)
		if hi == 0x0f && i == len(b)-1 {
			break
		}
		if hi > 9 {
			return "", fmt.Errorf("nibble %#x is not a digit", hi)
		}
		out = append(out, '0'+hi)
	}
	return string(out), nil
}

// Source and Destination Interface values (TS 29.244 8.2.2, 8.2.24).
const (
	InterfaceAccess uint8 = 0
	InterfaceCore   uint8 = 1
)

// Apply Action flags, octet 5 (TS 29.244 8.2.26).
const (
	ActionDrop     uint8 = 0x01
	ActionForward  uint8 = 0x02
	ActionBuffer   uint8 = 0x04
	ActionNotifyCP uint8 = 0x08
	ActionDupl     uint8 = 0x10
)

// Outer Header Removal descriptions (TS 29.244 8.2.64).
const (
	RemoveGTPUUDPIPv4 uint8 = 0
	RemoveGTPUUDPIPv6 uint8 = 1
)

// Outer Header Creation descriptions, octets 5-6 (TS 29.244 8.2.56).
const (
	CreateGTPUUDPIPv4 uint16 = 0x0100
	CreateGTPUUDPIPv6 uint16 = 0x0200
)

// PDR is a Packet Detection Rule (TS 29.244 7.5.2.2, Create PDR).
type PDR struct {
	ID         uint16
	Precedence uint32
	// PDI
	Source uint8 // Source Interface: InterfaceAccess (uplink) or InterfaceCore (downlink)
	// LocalFTEID is the PDI's local F-TEID (uplink). With ChooseFTEID the UP
	// function allocates it and reports it in a Created PDR.
	LocalFTEID  FTEID
	ChooseFTEID bool
	ChooseID    uint8 // PDRs with the same non-zero CHOOSE ID share one F-TEID
	ChooseIPv6  bool  // ask for an IPv6 F-TEID instead of IPv4
	UEAddr      netip.Addr
	UEAddrIsDst bool  // S/D flag: the UE address is the destination (downlink)
	QFI         uint8 // 0: none
	// OuterHeaderRemoval is applied when RemoveOuterHeader is set.
	RemoveOuterHeader  bool
	OuterHeaderRemoval uint8
	FARID              uint32
	QERIDs             []uint32
}

// CreateIE encodes p as a Create PDR IE.
func (p PDR) CreateIE() *ie.IE {
	pdi := []*ie.IE{ie.NewSourceInterface(p.Source)}
	switch {
	case p.ChooseFTEID:
		pdi = append(pdi, fteidChoose(p.ChooseIPv6, p.ChooseID))
	case !p.LocalFTEID.IsZero():
		pdi = append(pdi, p.LocalFTEID.IE())
	}
	if a := p.UEAddr.Unmap(); a.IsValid() {
		flags := uint8(0)
		if p.UEAddrIsDst {
			flags |= 0x04 // S/D
		}
		if a.Is4() {
			pdi = append(pdi, ie.NewUEIPAddress(flags|0x02, a.String(), "", 0, 0))
		} else {
			pdi = append(pdi, ie.NewUEIPAddress(flags|0x01, "", a.String(), 0, 0))
		}
	}
	if p.QFI != 0 {
		pdi = append(pdi, ie.NewQFI(p.QFI))
	}
	ies := []*ie.IE{ie.NewPDRID(p.ID), ie.NewPrecedence(p.Precedence), ie.NewPDI(pdi...)}
	if p.RemoveOuterHeader {
		ies = append(ies, ie.NewOuterHeaderRemoval(p.OuterHeaderRemoval, 0))
	}
	if p.FARID != 0 {
		ies = append(ies, ie.NewFARID(p.FARID))
	}
	for _, q := range p.QERIDs {
		ies = append(ies, ie.NewQERID(q))
	}
	return ie.NewCreatePDR(ies...)
}

// ParseCreatePDR decodes a Create PDR IE; missing mandatory IEs give an
// *IEError naming them.
func ParseCreatePDR(i *ie.IE) (PDR, error) {
	var p PDR
	children, err := i.CreatePDR()
	if err != nil {
		return p, incorrect(ie.CreatePDR, err)
	}
	var haveID, havePrec, havePDI bool
	for _, c := range children {
		switch c.Type {
		case ie.PDRID:
			if p.ID, err = c.PDRID(); err != nil {
				return p, incorrect(ie.PDRID, err)
			}
			haveID = true
		case ie.Precedence:
			if p.Precedence, err = c.Precedence(); err != nil {
				return p, incorrect(ie.Precedence, err)
			}
			havePrec = true
		case ie.PDI:
			if err := p.parsePDI(c); err != nil {
				return p, err
			}
			havePDI = true
		case ie.OuterHeaderRemoval:
			if len(c.Payload) < 1 {
				return p, incorrect(ie.OuterHeaderRemoval, errors.New("empty"))
			}
			p.RemoveOuterHeader, p.OuterHeaderRemoval = true, c.Payload[0]
		case ie.FARID:
			if p.FARID, err = c.FARID(); err != nil {
				return p, incorrect(ie.FARID, err)
			}
		case ie.QERID:
			q, err := c.QERID()
			if err != nil {
				return p, incorrect(ie.QERID, err)
			}
			p.QERIDs = append(p.QERIDs, q)
		}
	}
	switch {
	case !haveID:
		return p, missing(ie.PDRID)
	case !havePrec:
		return p, missing(ie.Precedence)
	case !havePDI:
		return p, missing(ie.PDI)
	}
	return p, nil
}

func (p *PDR) parsePDI(i *ie.IE) error {
	children, err := i.PDI()
	if err != nil {
		return incorrect(ie.PDI, err)
	}
	haveSrc := false
	for _, c := range children {
		switch c.Type {
		case ie.SourceInterface:
			v, err := c.SourceInterface()
			if err != nil {
				return incorrect(ie.SourceInterface, err)
			}
			p.Source, haveSrc = v&0x0f, true
		case ie.FTEID:
			f, err := parseFTEID(c)
			if err != nil {
				return err
			}
			p.LocalFTEID, p.ChooseFTEID, p.ChooseID, p.ChooseIPv6 = f.FTEID, f.choose, f.chooseID, f.v6
		case ie.UEIPAddress:
			u, err := c.UEIPAddress()
			if err != nil {
				return incorrect(ie.UEIPAddress, err)
			}
			p.UEAddrIsDst = u.Flags&0x04 != 0
			switch {
			case u.Flags&0x02 != 0 && u.IPv4Address != nil:
				p.UEAddr, _ = netip.AddrFromSlice(u.IPv4Address)
			case u.Flags&0x01 != 0 && u.IPv6Address != nil:
				p.UEAddr, _ = netip.AddrFromSlice(u.IPv6Address)
			}
		case ie.QFI:
			v, err := c.QFI()
			if err != nil {
				return incorrect(ie.QFI, err)
			}
			p.QFI = v & 0x3f
		}
	}
	if !haveSrc {
		return missing(ie.SourceInterface)
	}
	return nil
}

// Forwarding is a FAR's Forwarding Parameters (TS 29.244 7.5.2.3).
type Forwarding struct {
	Destination uint8 // Destination Interface
	// OuterHeader is the tunnel the UP function encapsulates into with an
	// Outer Header Creation GTP-U/UDP/IP (the gNB's F-TEID downlink); zero: none.
	OuterHeader FTEID
}

func (f Forwarding) ies() []*ie.IE {
	ies := []*ie.IE{ie.NewDestinationInterface(f.Destination)}
	if !f.OuterHeader.IsZero() {
		a := f.OuterHeader.Addr.Unmap()
		if a.Is4() {
			ies = append(ies, ie.NewOuterHeaderCreation(CreateGTPUUDPIPv4, f.OuterHeader.TEID, a.String(), "", 0, 0, 0))
		} else {
			ies = append(ies, ie.NewOuterHeaderCreation(CreateGTPUUDPIPv6, f.OuterHeader.TEID, "", a.String(), 0, 0, 0))
		}
	}
	return ies
}

// FAR is a Forwarding Action Rule (TS 29.244 7.5.2.3, Create FAR).
type FAR struct {
	ID         uint32
	Action     uint8       // Apply Action flags: ActionForward, ActionBuffer, ActionDrop...
	Forwarding *Forwarding // present when Action has ActionForward
}

// CreateIE encodes f as a Create FAR IE.
func (f FAR) CreateIE() *ie.IE {
	ies := []*ie.IE{ie.NewFARID(f.ID), ie.NewApplyAction(f.Action, 0)}
	if f.Forwarding != nil {
		ies = append(ies, ie.NewForwardingParameters(f.Forwarding.ies()...))
	}
	return ie.NewCreateFAR(ies...)
}

// ParseCreateFAR decodes a Create FAR IE.
func ParseCreateFAR(i *ie.IE) (FAR, error) {
	var f FAR
	children, err := i.CreateFAR()
	if err != nil {
		return f, incorrect(ie.CreateFAR, err)
	}
	var haveID, haveAction bool
	for _, c := range children {
		switch c.Type {
		case ie.FARID:
			if f.ID, err = c.FARID(); err != nil {
				return f, incorrect(ie.FARID, err)
			}
			haveID = true
		case ie.ApplyAction:
			if len(c.Payload) < 1 {
				return f, incorrect(ie.ApplyAction, errors.New("empty"))
			}
			f.Action, haveAction = c.Payload[0], true
		case ie.ForwardingParameters:
			fw, _, err := parseForwarding(c, ie.ForwardingParameters)
			if err != nil {
				return f, err
			}
			f.Forwarding = &fw
		}
	}
	switch {
	case !haveID:
		return f, missing(ie.FARID)
	case !haveAction:
		return f, missing(ie.ApplyAction)
	case f.Action&ActionForward != 0 && f.Forwarding == nil:
		// TS 29.244 7.5.2.3: Forwarding Parameters are present when FORW is set.
		return f, &IEError{IE: ie.ForwardingParameters, Cause: CauseConditionalIEMissing}
	}
	return f, nil
}

// parseForwarding decodes (Update) Forwarding Parameters; hasDst reports
// whether a Destination Interface was present.
func parseForwarding(i *ie.IE, typ uint16) (fw Forwarding, hasDst bool, err error) {
	children, err := i.ValueAsGrouped()
	if err != nil {
		return fw, false, incorrect(typ, err)
	}
	for _, c := range children {
		switch c.Type {
		case ie.DestinationInterface:
			if len(c.Payload) < 1 {
				return fw, false, incorrect(ie.DestinationInterface, errors.New("empty"))
			}
			fw.Destination, hasDst = c.Payload[0]&0x0f, true
		case ie.OuterHeaderCreation:
			if fw.OuterHeader, err = parseOuterHeaderCreation(c.Payload); err != nil {
				return fw, false, &IEError{IE: ie.OuterHeaderCreation, Cause: CauseMandatoryIEIncorrect, Err: err}
			}
		}
	}
	if typ == ie.ForwardingParameters && !hasDst {
		return fw, false, missing(ie.DestinationInterface)
	}
	return fw, hasDst, nil
}

// ErrUnsupportedOuterHeader: an Outer Header Creation other than GTP-U/UDP/IP.
var ErrUnsupportedOuterHeader = errors.New("outer header creation other than GTP-U/UDP/IP")

// parseOuterHeaderCreation decodes TS 29.244 8.2.56 for GTP-U descriptions:
// octets 5-6 description, then TEID, then IPv4 and/or IPv6 address.
func parseOuterHeaderCreation(b []byte) (FTEID, error) {
	if len(b) < 2 {
		return FTEID{}, errors.New("outer header creation shorter than 2 octets")
	}
	desc := binary.BigEndian.Uint16(b)
	if desc&(CreateGTPUUDPIPv4|CreateGTPUUDPIPv6) == 0 || desc&^(CreateGTPUUDPIPv4|CreateGTPUUDPIPv6) != 0 {
		return FTEID{}, fmt.Errorf("%w (description %#04x)", ErrUnsupportedOuterHeader, desc)
	}
	b = b[2:]
	if len(b) < 4 {
		return FTEID{}, errors.New("outer header creation: TEID missing")
	}
	out := FTEID{TEID: binary.BigEndian.Uint32(b)}
	b = b[4:]
	if desc&CreateGTPUUDPIPv4 != 0 {
		if len(b) < 4 {
			return FTEID{}, errors.New("outer header creation: IPv4 address missing")
		}
		out.Addr = netip.AddrFrom4([4]byte(b[:4]))
		b = b[4:]
	}
	if desc&CreateGTPUUDPIPv6 != 0 {
		if len(b) < 16 {
			return FTEID{}, errors.New("outer header creation: IPv6 address missing")
		}
		if !out.Addr.IsValid() {
			out.Addr = netip.AddrFrom16([16]byte(b[:16]))
		}
	}
	return out, nil
}

// FARUpdate is an Update FAR (TS 29.244 7.5.4.3).
type FARUpdate struct {
	ID     uint32
	Action uint8 // new Apply Action; 0 keeps the current one
	// Forwarding replaces the forwarding parameters (Update Forwarding
	// Parameters); nil keeps them. When decoded without a Destination
	// Interface, KeepDestination is set.
	Forwarding      *Forwarding
	KeepDestination bool
}

// IE encodes u as an Update FAR IE.
func (u FARUpdate) IE() *ie.IE {
	ies := []*ie.IE{ie.NewFARID(u.ID)}
	if u.Action != 0 {
		ies = append(ies, ie.NewApplyAction(u.Action, 0))
	}
	if u.Forwarding != nil {
		ies = append(ies, ie.NewUpdateForwardingParameters(u.Forwarding.ies()...))
	}
	return ie.NewUpdateFAR(ies...)
}

// ParseUpdateFAR decodes an Update FAR IE.
func ParseUpdateFAR(i *ie.IE) (FARUpdate, error) {
	var u FARUpdate
	children, err := i.UpdateFAR()
	if err != nil {
		return u, incorrect(ie.UpdateFAR, err)
	}
	haveID := false
	for _, c := range children {
		switch c.Type {
		case ie.FARID:
			if u.ID, err = c.FARID(); err != nil {
				return u, incorrect(ie.FARID, err)
			}
			haveID = true
		case ie.ApplyAction:
			if len(c.Payload) < 1 {
				return u, incorrect(ie.ApplyAction, errors.New("empty"))
			}
			u.Action = c.Payload[0]
		case ie.UpdateForwardingParameters:
			fw, hasDst, err := parseForwarding(c, ie.UpdateForwardingParameters)
			if err != nil {
				return u, err
			}
			u.Forwarding, u.KeepDestination = &fw, !hasDst
		}
	}
	if !haveID {
		return u, missing(ie.FARID)
	}
	return u, nil
}

// QER is a QoS Enforcement Rule (TS 29.244 7.5.2.5, Create QER).
type QER struct {
	ID         uint32
	GateULOpen bool
	GateDLOpen bool
	// MBR in kbit/s (TS 29.244 8.2.8); both zero: no MBR IE.
	MBRUplink, MBRDownlink uint64
	QFI                    uint8 // 0: none
}

// CreateIE encodes q as a Create QER IE.
func (q QER) CreateIE() *ie.IE {
	gate := func(open bool) uint8 {
		if open {
			return ie.GateStatusOpen
		}
		return ie.GateStatusClosed
	}
	ies := []*ie.IE{ie.NewQERID(q.ID), ie.NewGateStatus(gate(q.GateULOpen), gate(q.GateDLOpen))}
	if q.MBRUplink != 0 || q.MBRDownlink != 0 {
		ies = append(ies, ie.NewMBR(q.MBRUplink, q.MBRDownlink))
	}
	if q.QFI != 0 {
		ies = append(ies, ie.NewQFI(q.QFI))
	}
	return ie.NewCreateQER(ies...)
}

// ParseCreateQER decodes a Create QER IE.
func ParseCreateQER(i *ie.IE) (QER, error) {
	var q QER
	children, err := i.CreateQER()
	if err != nil {
		return q, incorrect(ie.CreateQER, err)
	}
	var haveID, haveGate bool
	for _, c := range children {
		switch c.Type {
		case ie.QERID:
			if q.ID, err = c.QERID(); err != nil {
				return q, incorrect(ie.QERID, err)
			}
			haveID = true
		case ie.GateStatus:
			if len(c.Payload) < 1 {
				return q, incorrect(ie.GateStatus, errors.New("empty"))
			}
			// TS 29.244 8.2.7: bits 3-4 UL gate, bits 1-2 DL gate; 0 = OPEN.
			q.GateULOpen, q.GateDLOpen, haveGate = (c.Payload[0]>>2)&0x03 == 0, c.Payload[0]&0x03 == 0, true
		case ie.MBR:
			if len(c.Payload) < 10 {
				return q, incorrect(ie.MBR, errors.New("shorter than 10 octets"))
			}
			if q.MBRUplink, err = c.MBRUL(); err != nil {
				return q, incorrect(ie.MBR, err)
			}
			if q.MBRDownlink, err = c.MBRDL(); err != nil {
				return q, incorrect(ie.MBR, err)
			}
		case ie.QFI:
			v, err := c.QFI()
			if err != nil {
				return q, incorrect(ie.QFI, err)
			}
			q.QFI = v & 0x3f
		}
	}
	switch {
	case !haveID:
		return q, missing(ie.QERID)
	case !haveGate:
		return q, missing(ie.GateStatus)
	}
	return q, nil
}

// removeID reads the rule ID inside a Remove PDR/FAR/QER IE.
func removeID(i *ie.IE, idType uint16) (uint32, error) {
	children, err := i.ValueAsGrouped()
	if err != nil {
		return 0, incorrect(i.Type, err)
	}
	for _, c := range children {
		if c.Type != idType {
			continue
		}
		switch idType {
		case ie.PDRID:
			v, err := c.PDRID()
			if err != nil {
				return 0, incorrect(idType, err)
			}
			return uint32(v), nil
		default:
			v, err := c.ValueAsUint32()
			if err != nil {
				return 0, incorrect(idType, err)
			}
			return v, nil
		}
	}
	return 0, missing(idType)
}

// ParseRemovePDR returns the PDR ID of a Remove PDR IE.
func ParseRemovePDR(i *ie.IE) (uint16, error) {
	v, err := removeID(i, ie.PDRID)
	return uint16(v), err
}

// ParseRemoveFAR returns the FAR ID of a Remove FAR IE.
func ParseRemoveFAR(i *ie.IE) (uint32, error) { return removeID(i, ie.FARID) }

// ParseRemoveQER returns the QER ID of a Remove QER IE.
func ParseRemoveQER(i *ie.IE) (uint32, error) { return removeID(i, ie.QERID) }

package beam

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// LineTerminator ends the TCP identity line: spec 2.4 says a newline, and
// the beamtest server reads the line with Ruby's gets (LF), its fixtures
// sending "\n".
const LineTerminator = "\n"

// Keys of the TCP identity line, in the order Beam writes them (spec 2.4).
const (
	KeyIMEI      = "imei"
	KeyIMSI      = "imsi"
	KeyMSISDN    = "msisdn"
	KeySIMID     = "simId"
	KeyTimestamp = "timestamp"
)

// lineKeys is the order of the items; a parsed line must follow it.
var lineKeys = [...]string{KeyIMEI, KeyIMSI, KeyMSISDN, KeySIMID, KeyTimestamp}

const (
	sigPrefix = ";signature="
	sigHexLen = 2 * 32 // SHA-256, hex
	maxValue  = 64
	// MaxLineLen bounds a parsed identity line, terminator included: five
	// items of at most 64 characters, their keys and the signature fit.
	MaxLineLen = 512
)

// ErrLine is wrapped by every ParseLine error.
var ErrLine = errors.New("malformed identity line")

// Item is one key=value of an identity line.
type Item struct {
	Key, Value string
}

// Line is a TCP identity line: its items and, when signed, the signature.
type Line struct {
	Items     []Item
	Signature string // lowercase hex; "" when unsigned
}

// Get returns the value of key, or "".
func (l Line) Get(key string) string {
	for _, it := range l.Items {
		if it.Key == key {
			return it.Value
		}
	}
	return ""
}

// StringToSign is the line's text before ';': its items, space-separated.
func (l Line) StringToSign() string {
	var b strings.Builder
	for i, it := range l.Items {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(it.Key)
		b.WriteByte('=')
		b.WriteString(it.Value)
	}
	return b.String()
}

// String is the line as sent, without LineTerminator.
func (l Line) String() string {
	s := l.StringToSign()
	if l.Signature != "" {
		s += sigPrefix + l.Signature
	}
	return s
}

// Verify checks the line's signature under psk (spec 2.4) in constant time.
func (l Line) Verify(psk string) error {
	if l.Signature == "" {
		return fmt.Errorf("beam: identity line: %w", ErrNoSignature)
	}
	return compareSig(l.Signature, SignTCP(psk, l.StringToSign()))
}

// ParseLine parses an identity line as a TCP destination receives it, with
// or without its terminator ("\n" or "\r\n"): items of the keys imei, imsi,
// msisdn, simId, timestamp in that order, each at most once, separated by one
// space, timestamp required; then optionally ";signature=" and 64 lowercase
// hex digits. Values are 1-64 characters of [A-Za-z0-9._-]; the timestamp
// is decimal milliseconds.
func ParseLine(s string) (Line, error) {
	if len(s) > MaxLineLen {
		return Line{}, fmt.Errorf("beam: %w: longer than %d bytes", ErrLine, MaxLineLen)
	}
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	head, sig, signedLine := strings.Cut(s, ";")
	var l Line
	if signedLine {
		hexSig, ok := strings.CutPrefix(";"+sig, sigPrefix)
		if !ok || !isLowerHex(hexSig, sigHexLen) {
			return Line{}, fmt.Errorf("beam: %w: want ;signature=<64 lowercase hex digits> after the items", ErrLine)
		}
		l.Signature = hexSig
	}
	next := 0 // index into lineKeys of the next admissible key
	for head != "" {
		var kv string
		kv, head, _ = strings.Cut(head, " ")
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Line{}, fmt.Errorf("beam: %w: item %q is not key=value", ErrLine, kv)
		}
		i := next
		for i < len(lineKeys) && lineKeys[i] != k {
			i++
		}
		if i == len(lineKeys) {
			return Line{}, fmt.Errorf("beam: %w: key %q unknown, repeated or out of order", ErrLine, k)
		}
		next = i + 1
		if !validValue(v) || (k == KeyTimestamp && !isDigits(v)) {
			return Line{}, fmt.Errorf("beam: %w: %s value %q", ErrLine, k, v)
		}
		l.Items = append(l.Items, Item{k, v})
	}
	if len(l.Items) == 0 || l.Items[len(l.Items)-1].Key != KeyTimestamp {
		return Line{}, fmt.Errorf("beam: %w: no timestamp", ErrLine)
	}
	if l.String() != s {
		// Only a trailing space before ';' or the end can make the text
		// differ from its items.
		return Line{}, fmt.Errorf("beam: %w: items must be separated by single spaces", ErrLine)
	}
	return l, nil
}

// IdentityLine is the line the TCP entry point writes first for entry e and
// the SIM id at now, without LineTerminator (spec 2.4): the enabled items
// the network knows, the timestamp and, with addSignature and a PSK, the
// signature. It is "" when e enables no identity item and no signature.
func IdentityLine(e udr.BeamEntry, id endorse.Identity, now time.Time) (string, error) {
	sign := e.AddSignature && e.PSK != ""
	if !e.AddEquipmentHeader && !e.AddSubscriberHeader && !e.AddMsisdnHeader && !e.AddSimIDHeader && !sign {
		return "", nil
	}
	if err := checkIdentity(e, id); err != nil {
		return "", err
	}
	var l Line
	for _, it := range [...]struct {
		on  bool
		key string
		v   string
	}{
		{e.AddEquipmentHeader, KeyIMEI, id.IMEI},
		{e.AddSubscriberHeader, KeyIMSI, id.IMSI},
		{e.AddMsisdnHeader, KeyMSISDN, id.MSISDN},
		{e.AddSimIDHeader, KeySIMID, id.SIMID},
	} {
		if !it.on || it.v == "" {
			continue
		}
		l.Items = append(l.Items, Item{it.key, it.v})
	}
	l.Items = append(l.Items, Item{KeyTimestamp, strconv.FormatInt(now.UnixMilli(), 10)})
	if sign {
		l.Signature = SignTCP(e.PSK, l.StringToSign())
	}
	return l.String(), nil
}

// validValue reports whether v can be sent as a header value or line item:
// 1-64 characters of [A-Za-z0-9._-], which holds every IMSI, IMEI, MSISDN
// and SIM ID the subscriber store admits.
func validValue(v string) bool {
	if v == "" || len(v) > maxValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

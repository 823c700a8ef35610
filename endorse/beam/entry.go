package beam

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// Entry points of the SoracomBeam namespace (spec 2.1, 2.2). The device
// reaches them at beam.soracom.io; configuration keys name them by URL.
const (
	HTTPEntryPoint    = "http://beam.soracom.io:8888"
	WebsiteEntryPoint = "http://beam.soracom.io:18080"
	TCPEntryPoint     = "tcp://beam.soracom.io:8023"
)

// endpoint is an entry-point URL reduced to what keys are compared on.
type endpoint struct {
	scheme, host, port string
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// parseEndpoint splits an entry-point URL (a configuration key) into its
// endpoint and escaped path; the host is lower-cased and a missing port is
// the scheme's default.
func parseEndpoint(raw string) (endpoint, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, "", err
	}
	if u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, "", fmt.Errorf("%q is not scheme://host[:port][/path]", raw)
	}
	ep := endpoint{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port()}
	if ep.port == "" {
		ep.port = defaultPorts[ep.scheme]
	}
	if ep.port == "" {
		return endpoint{}, "", fmt.Errorf("%q: no port", raw)
	}
	return ep, u.EscapedPath(), nil
}

// match is the entry chosen for a request.
type match struct {
	key   string
	entry udr.BeamEntry
	rest  string // escaped request path below the entry path ("" or "/...")
}

// lookup finds the enabled entry of ep serving the escaped request path
// escPath: the longest entry path that is a prefix of escPath at a '/'
// boundary. The TCP entry point looks up "", which keys without a path (or
// with "/") serve.
func lookup(cfg udr.BeamConfig, ep endpoint, escPath string) (match, bool) {
	var best match
	bestLen := -1
	for key, e := range cfg {
		if !e.Enabled {
			continue
		}
		kep, p, err := parseEndpoint(key)
		if err != nil || kep != ep {
			continue // the store validates keys; an unusable one serves nothing
		}
		base := strings.TrimSuffix(p, "/") // "" for "" and "/"
		if escPath != base && !strings.HasPrefix(escPath, base+"/") {
			continue
		}
		rest := escPath[len(base):]
		// Longest path wins; between equal ones (keys differing only in a
		// trailing '/' or case) the smaller key, so the choice is stable.
		if len(base) > bestLen || (len(base) == bestLen && key < best.key) {
			best, bestLen = match{key: key, entry: e, rest: rest}, len(base)
		}
	}
	return best, bestLen >= 0
}

// hasDotSegment reports whether the escaped path has a "." or ".." segment,
// in either spelling (RFC 3986 5.2.4; %2E is a dot too).
func hasDotSegment(escPath string) bool {
	for seg := range strings.SplitSeq(escPath, "/") {
		switch strings.ToLower(seg) {
		case ".", "..", "%2e", "%2e%2e", ".%2e", "%2e.":
			return true
		}
	}
	return false
}

// joinPath appends the escaped rest ("" or "/...") to the escaped
// destination path, with one '/' between them.
func joinPath(dest, rest string) string {
	switch {
	case rest == "":
		if dest == "" {
			return "/"
		}
		return dest
	case strings.HasSuffix(dest, "/"):
		return dest + rest[1:]
	default:
		return dest + rest
	}
}

// Tag prepares the header h of a request forwarded through entry e for the
// SIM id at now (spec 2.2, 2.3): it removes every X-Soracom-* field, applies
// e's custom headers (skipping any that name an X-Soracom-* field or are not
// valid fields), adds X-Soracom-IMSI, -IMEI, -MSISDN and -SIM-ID per e's
// flags when the value is known, X-Soracom-Timestamp in epoch milliseconds
// and, with addSignature and a PSK, X-Soracom-Signature and
// X-Soracom-Signature-Version. An identity value that cannot be sent is an
// error wrapping endorse.ErrIdentity, and h is left unchanged.
func Tag(h http.Header, e udr.BeamEntry, id endorse.Identity, now time.Time) error {
	if err := checkIdentity(e, id); err != nil {
		return err
	}
	stripSoracom(h)
	if len(e.CustomHeaders) > 0 {
		applyCustom(h, e.CustomHeaders)
	}
	if e.AddSubscriberHeader && id.IMSI != "" {
		h[HeaderIMSI] = []string{id.IMSI}
	}
	if e.AddEquipmentHeader && id.IMEI != "" {
		h[HeaderIMEI] = []string{id.IMEI}
	}
	if e.AddMsisdnHeader && id.MSISDN != "" {
		h[HeaderMSISDN] = []string{id.MSISDN}
	}
	if e.AddSimIDHeader && id.SIMID != "" {
		h[HeaderSIMID] = []string{id.SIMID}
	}
	h[HeaderTimestamp] = []string{strconv.FormatInt(now.UnixMilli(), 10)}
	if e.AddSignature && e.PSK != "" {
		// Every X-Soracom-* field in h is one just added, so the signature
		// covers exactly what Beam added.
		h[HeaderSignature] = []string{SignHTTP(e.PSK, h)}
		h[HeaderSignatureVersion] = []string{SignatureVersion}
	}
	return nil
}

// checkIdentity checks that the values e sends of id can be sent: each is
// 1-64 characters of [A-Za-z0-9._-] (an unknown value is not sent at all).
func checkIdentity(e udr.BeamEntry, id endorse.Identity) error {
	for _, f := range [...]struct {
		on   bool
		name string
		v    string
	}{
		{e.AddSubscriberHeader, "imsi", id.IMSI},
		{e.AddEquipmentHeader, "imei", id.IMEI},
		{e.AddMsisdnHeader, "msisdn", id.MSISDN},
		{e.AddSimIDHeader, "simId", id.SIMID},
	} {
		if f.on && f.v != "" && !validValue(f.v) {
			return fmt.Errorf("beam: %s %q: %w", f.name, f.v, endorse.ErrIdentity)
		}
	}
	return nil
}

// stripSoracom removes every X-Soracom-* field, in any spelling of its name.
func stripSoracom(h http.Header) {
	for k := range h {
		if isSoracom(k) {
			delete(h, k)
		}
	}
}

// applyCustom applies custom header manipulations (spec 2.2) in the order of
// their names. The field is headerKey, or the map key when that is empty.
func applyCustom(h http.Header, ch map[string]udr.CustomHeader) {
	for _, name := range slices.Sorted(maps.Keys(ch)) {
		c := ch[name]
		field := c.HeaderKey
		if field == "" {
			field = name
		}
		if isSoracom(field) || !validFieldName(field) || !validFieldValue(c.HeaderValue) {
			continue
		}
		switch c.Action {
		case "append":
			h.Add(field, c.HeaderValue)
		case "replace":
			h.Set(field, c.HeaderValue)
		case "delete":
			h.Del(field)
		}
	}
}

// validFieldName reports whether s is an RFC 9110 5.6.2 token.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether s may be sent as a field value: no
// control character but tab (RFC 9110 5.5).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// destination parses an entry's destination, requiring one of schemes and,
// for stream destinations, an explicit port.
func destination(raw string, needPort bool, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("destination %q: scheme is not %s", raw, strings.Join(schemes, " or "))
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("destination %q: no host", raw)
	}
	if needPort {
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			return nil, fmt.Errorf("destination %q: want host:port", raw)
		}
	}
	return u, nil
}

package udr

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// MaxTokenTimeoutSeconds bounds endorse.tokenTimeoutSeconds. SORACOM does not
// publish a range (../shared/spec/soracom-endorse-beam.md 1.7); a year is
// simgate's own limit against typos.
const MaxTokenTimeoutSeconds = 365 * 24 * 3600

// newGroup is a group with nothing stored: Endorse defaults, no Beam entries.
func newGroup(name string) Group {
	return Group{Name: name, Endorse: DefaultEndorse(), Beam: BeamConfig{}}
}

// GetGroup returns the group's settings. A group with no stored settings
// (the "default" group, or any group SIMs name) gets DefaultEndorse() and no
// Beam entries.
func (s *Store) GetGroup(name string) (Group, error) {
	if err := ValidateGroupName(name); err != nil {
		return Group{}, fmt.Errorf("udr: %w", err)
	}
	var g Group
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		g, _, err = getGroup(tx, name)
		return err
	})
	return g, err
}

func getGroup(tx *bolt.Tx, name string) (Group, bool, error) {
	v := tx.Bucket(bucketGroups).Get([]byte(name))
	if v == nil {
		return newGroup(name), false, nil
	}
	var g Group
	if err := json.Unmarshal(v, &g); err != nil {
		return Group{}, false, fmt.Errorf("udr: group %s: corrupt record: %w", name, err)
	}
	if g.Beam == nil {
		g.Beam = BeamConfig{}
	}
	return g, true, nil
}

func putGroup(tx *bolt.Tx, g *Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("udr: group %s: %w", g.Name, err)
	}
	return tx.Bucket(bucketGroups).Put([]byte(g.Name), b)
}

// PutGroup validates and stores a group's settings, replacing any.
func (s *Store) PutGroup(g Group) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putGroup(tx, &g) })
}

// UpdateGroup runs fn on the group's settings (defaults if none are stored)
// and stores the validated result in one transaction. It returns the
// stored group.
func (s *Store) UpdateGroup(name string, fn func(*Group) error) (Group, error) {
	if err := ValidateGroupName(name); err != nil {
		return Group{}, fmt.Errorf("udr: %w", err)
	}
	var g Group
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		if g, _, err = getGroup(tx, name); err != nil {
			return err
		}
		if err := fn(&g); err != nil {
			return err
		}
		if g.Name != name {
			return fmt.Errorf("udr: group %s: the name of a group cannot change", name)
		}
		return putGroup(tx, &g)
	})
	return g, err
}

// ListGroups returns, sorted by name, every group with stored settings,
// every group a SIM names, and the default group.
func (s *Store) ListGroups() ([]Group, error) {
	groups := map[string]Group{DefaultGroup: newGroup(DefaultGroup)}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketGroups).ForEach(func(k, _ []byte) error {
			g, _, err := getGroup(tx, string(k))
			groups[g.Name] = g
			return err
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketSIMs).ForEach(func(_, v []byte) error {
			name, err := recordGroup(v)
			if _, ok := groups[name]; !ok && err == nil {
				groups[name] = newGroup(name)
			}
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(groups))
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// recordGroup reads only the group of a stored SIM record.
func recordGroup(v []byte) (string, error) {
	var r struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return "", fmt.Errorf("udr: corrupt record: %w", err)
	}
	return r.Group, nil
}

// GroupSIMCounts returns the number of SIMs in each group that has any.
func (s *Store) GroupSIMCounts() (map[string]int, error) {
	counts := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSIMs).ForEach(func(_, v []byte) error {
			name, err := recordGroup(v)
			counts[name]++
			return err
		})
	})
	return counts, err
}

// DeleteGroup removes a group's stored settings. The default group always
// exists: deleting it resets it to the defaults. A group that SIMs are in
// cannot be deleted. ErrNotFound if nothing is stored for another group.
func (s *Store) DeleteGroup(name string) error {
	if err := ValidateGroupName(name); err != nil {
		return fmt.Errorf("udr: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketGroups)
		if name == DefaultGroup {
			return bk.Delete([]byte(name))
		}
		n := 0
		err := tx.Bucket(bucketSIMs).ForEach(func(_, v []byte) error {
			g, err := recordGroup(v)
			if g == name {
				n++
			}
			return err
		})
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("udr: delete group %s: %d SIMs are in it; move them first", name, n)
		}
		if bk.Get([]byte(name)) == nil {
			return fmt.Errorf("udr: delete group %s: %w", name, ErrNotFound)
		}
		return bk.Delete([]byte(name))
	})
}

// Validate checks a group's name and settings.
func (g *Group) Validate() error {
	if err := ValidateGroupName(g.Name); err != nil {
		return fmt.Errorf("udr: %w", err)
	}
	fail := func(key string, err error) error {
		return fmt.Errorf("udr: group %s: %s: %w", g.Name, key, err)
	}
	e := &g.Endorse
	if e.TokenTimeoutSeconds < 1 || e.TokenTimeoutSeconds > MaxTokenTimeoutSeconds {
		return fail("endorse.tokenTimeoutSeconds", fmt.Errorf("%d is not in 1..%d", e.TokenTimeoutSeconds, MaxTokenTimeoutSeconds))
	}
	if e.AllowOrigin != "" && e.AllowOrigin != "*" {
		if err := checkOrigin(e.AllowOrigin); err != nil {
			return fail("endorse.allowOrigin", err)
		}
	}
	for _, u := range e.AuthorizedRedirectURLs {
		if err := checkURL(u, "http", "https"); err != nil {
			return fail("endorse.authorizedRedirectUrls", err)
		}
	}
	for _, entry := range slices.Sorted(maps.Keys(g.Beam)) {
		if err := g.Beam[entry].validate(entry); err != nil {
			return fail("beam["+entry+"]", err)
		}
	}
	return nil
}

// Beam entry points and destinations (../shared/spec/soracom-endorse-beam.md 2.1, 2.2).
var (
	beamEntrySchemes = []string{"http", "tcp", "udp", "mqtt"}
	beamDestSchemes  = []string{"http", "https", "tcp", "tcps", "udp", "mqtt", "mqtts"}
)

func (b BeamEntry) validate(entry string) error {
	if err := checkURL(entry, beamEntrySchemes...); err != nil {
		return fmt.Errorf("entry point: %w", err)
	}
	switch {
	case b.Destination != "":
		if err := checkURL(b.Destination, beamDestSchemes...); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
	case b.Enabled:
		return errors.New("destination: missing on an enabled entry")
	}
	if b.AddSignature && b.PSK == "" {
		// ../shared/spec/soracom-endorse-beam.md 2.3: signing needs a PSK.
		return errors.New("addSignature: needs psk")
	}
	for _, name := range slices.Sorted(maps.Keys(b.CustomHeaders)) {
		h := b.CustomHeaders[name]
		switch h.Action {
		case "append", "replace":
			if h.HeaderValue == "" {
				return fmt.Errorf("customHeaders[%s].headerValue: missing for action %s", name, h.Action)
			}
		case "delete":
		default:
			return fmt.Errorf("customHeaders[%s].action: %q is not append, replace or delete", name, h.Action)
		}
		if !isToken(h.HeaderKey) {
			return fmt.Errorf("customHeaders[%s].headerKey: %q is not an HTTP header name", name, h.HeaderKey)
		}
	}
	return nil
}

// checkURL accepts an absolute URL with a host and one of the schemes.
func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("%q: scheme %q is not one of %s", s, u.Scheme, strings.Join(schemes, ", "))
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q: has a fragment", s)
	}
	return nil
}

// checkOrigin accepts a serialised origin, scheme://host[:port]
// (RFC 6454 6.2), the value of Access-Control-Allow-Origin.
func checkOrigin(s string) error {
	if err := checkURL(s, "http", "https"); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin (scheme://host[:port], no path)", s)
	}
	return nil
}

// isToken reports whether s is an RFC 9110 5.6.2 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// SplitAssignment splits "key=value" at the first '=' outside brackets, so
// a Beam entry URL in the key may itself contain '='.
func SplitAssignment(s string) (key, value string, err error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '=':
			if depth == 0 {
				if i == 0 {
					return "", "", fmt.Errorf("%q: empty key", s)
				}
				return s[:i], s[i+1:], nil
			}
		}
	}
	if depth != 0 {
		return "", "", fmt.Errorf("%q: unbalanced brackets", s)
	}
	return "", "", fmt.Errorf("%q: want key=value", s)
}

// GroupKeysHelp documents the keys Group.Set accepts.
const GroupKeysHelp = `Keys (field names are case-insensitive):
  endorse.enabled=true|false
  endorse.parametersToEndorse.{imsi,imei,simId,msisdn,requestParameters}=true|false
  endorse.tokenTimeoutSeconds=SECONDS          (1..31536000)
  endorse.allowOrigin=ORIGIN                   (scheme://host[:port] or *; empty clears)
  endorse.authorizedRedirectUrls=URL[,URL...]  (http/https; empty clears)
  beam[ENTRY-URL].FIELD=VALUE                  (creates the entry, enabled, if new)
      ENTRY-URL: e.g. http://beam.soracom.io:8888/ or tcp://beam.soracom.io:8023
      FIELD: name, destination, enabled, addSubscriberHeader, addEquipmentHeader,
             addMsisdnHeader, addSimIdHeader, addSignature, psk, skipStatusCode
  beam[ENTRY-URL].customHeaders[NAME].{action,headerKey,headerValue}=VALUE
      action: append, replace or delete; headerKey defaults to NAME
  beam[ENTRY-URL]=                             (empty value: delete the entry)
  beam[ENTRY-URL].customHeaders[NAME]=         (empty value: delete the header)`

// Set changes one setting named by a path (see GroupKeysHelp), e.g.
// "endorse.parametersToEndorse.imei" or "beam[tcp://beam.soracom.io:8023].destination".
// The group as a whole is validated when stored (Validate), so that related
// keys can be set together.
func (g *Group) Set(key, value string) error {
	err := g.set(key, value)
	if err != nil {
		return fmt.Errorf("udr: group %s: %s: %w", g.Name, key, err)
	}
	return nil
}

func (g *Group) set(key, value string) error {
	ns, rest, _ := strings.Cut(key, ".")
	if entry, field, ok := cutBracket(key, "beam"); ok {
		return g.setBeam(entry, field, value)
	}
	if !strings.EqualFold(ns, "endorse") {
		if strings.EqualFold(ns, "beam") {
			return errors.New("unknown key; Beam keys are beam[ENTRY-URL].FIELD")
		}
		return errors.New("unknown key; keys start with endorse. or beam[")
	}
	e := &g.Endorse
	if p, ok := strings.CutPrefix(strings.ToLower(rest), "parameterstoendorse."); ok {
		var dst *bool
		switch p {
		case "simid":
			dst = &e.ParametersToEndorse.SIMID
		case "imsi":
			dst = &e.ParametersToEndorse.IMSI
		case "imei":
			dst = &e.ParametersToEndorse.IMEI
		case "msisdn":
			dst = &e.ParametersToEndorse.MSISDN
		case "requestparameters":
			dst = &e.ParametersToEndorse.RequestParameters
		default:
			return errors.New("unknown key; parametersToEndorse has simId, imsi, imei, msisdn, requestParameters")
		}
		return setBool(dst, value)
	}
	switch strings.ToLower(rest) {
	case "enabled":
		return setBool(&e.Enabled, value)
	case "tokentimeoutseconds":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxTokenTimeoutSeconds {
			return fmt.Errorf("%q is not a number of seconds in 1..%d", value, MaxTokenTimeoutSeconds)
		}
		e.TokenTimeoutSeconds = n
	case "alloworigin":
		if value != "" && value != "*" {
			if err := checkOrigin(value); err != nil {
				return err
			}
		}
		e.AllowOrigin = value
	case "authorizedredirecturls":
		var urls []string
		for u := range strings.SplitSeq(value, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			if err := checkURL(u, "http", "https"); err != nil {
				return err
			}
			urls = append(urls, u)
		}
		e.AuthorizedRedirectURLs = urls
	default:
		return errors.New("unknown key; endorse has enabled, parametersToEndorse.*, tokenTimeoutSeconds, allowOrigin, authorizedRedirectUrls")
	}
	return nil
}

// cutBracket parses "<name>[<inner>]<rest>" where inner may itself hold
// balanced brackets (an IPv6 URL). rest is what follows, minus a leading '.'.
func cutBracket(s, name string) (inner, rest string, ok bool) {
	if len(s) <= len(name) || !strings.EqualFold(s[:len(name)], name) || s[len(name)] != '[' {
		return "", "", false
	}
	depth := 0
	for i := len(name); i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				rest = s[i+1:]
				if rest != "" && rest[0] != '.' {
					return "", "", false
				}
				return s[len(name)+1 : i], strings.TrimPrefix(rest, "."), true
			}
		}
	}
	return "", "", false
}

func (g *Group) setBeam(entry, field, value string) error {
	if err := checkURL(entry, beamEntrySchemes...); err != nil {
		return fmt.Errorf("entry point: %w", err)
	}
	if g.Beam == nil {
		g.Beam = BeamConfig{}
	}
	if field == "" {
		if value != "" {
			return errors.New("only an empty value (delete the entry) may be given to a whole entry")
		}
		if _, ok := g.Beam[entry]; !ok {
			return errors.New("no such Beam entry to delete")
		}
		delete(g.Beam, entry)
		return nil
	}
	b, ok := g.Beam[entry]
	if !ok {
		b = BeamEntry{Enabled: true}
	}
	var err error
	if name, sub, ok := cutBracket(field, "customHeaders"); ok {
		err = b.setHeader(name, sub, value)
	} else {
		err = b.setField(field, value)
	}
	if err != nil {
		return err
	}
	g.Beam[entry] = b
	return nil
}

func (b *BeamEntry) setField(field, value string) error {
	switch strings.ToLower(field) {
	case "name":
		b.Name = value
	case "destination":
		if err := checkURL(value, beamDestSchemes...); err != nil {
			return err
		}
		b.Destination = value
	case "psk":
		b.PSK = value
	case "enabled":
		return setBool(&b.Enabled, value)
	case "addsubscriberheader":
		return setBool(&b.AddSubscriberHeader, value)
	case "addequipmentheader":
		return setBool(&b.AddEquipmentHeader, value)
	case "addmsisdnheader":
		return setBool(&b.AddMsisdnHeader, value)
	case "addsimidheader":
		return setBool(&b.AddSimIDHeader, value)
	case "addsignature":
		return setBool(&b.AddSignature, value)
	case "skipstatuscode":
		return setBool(&b.SkipStatusCode, value)
	default:
		return fmt.Errorf("unknown Beam field %q; see simgate group set --help", field)
	}
	return nil
}

func (b *BeamEntry) setHeader(name, sub, value string) error {
	if !isToken(name) {
		return fmt.Errorf("custom header %q is not an HTTP header name", name)
	}
	if sub == "" {
		if value != "" {
			return errors.New("only an empty value (delete the header) may be given to a whole header")
		}
		if _, ok := b.CustomHeaders[name]; !ok {
			return fmt.Errorf("no custom header %q to delete", name)
		}
		delete(b.CustomHeaders, name)
		if len(b.CustomHeaders) == 0 {
			b.CustomHeaders = nil // as stored (omitempty)
		}
		return nil
	}
	h, ok := b.CustomHeaders[name]
	if !ok {
		h = CustomHeader{HeaderKey: name}
	}
	switch strings.ToLower(sub) {
	case "action":
		if value != "append" && value != "replace" && value != "delete" {
			return fmt.Errorf("%q is not append, replace or delete", value)
		}
		h.Action = value
	case "headerkey":
		if !isToken(value) {
			return fmt.Errorf("%q is not an HTTP header name", value)
		}
		h.HeaderKey = value
	case "headervalue":
		h.HeaderValue = value
	default:
		return fmt.Errorf("unknown custom header field %q; want action, headerKey or headerValue", sub)
	}
	if b.CustomHeaders == nil {
		b.CustomHeaders = map[string]CustomHeader{}
	}
	b.CustomHeaders[name] = h
	return nil
}

func setBool(dst *bool, value string) error {
	v, err := strconv.ParseBool(value)
	if err != nil {
		return fmt.Errorf("%q is not true or false", value)
	}
	*dst = v
	return nil
}

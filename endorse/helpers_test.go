package endorse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/simgate/simgate/core/udr"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1679923590, 0)} } // iat of the 2023 real token

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memStore is a small in-memory subscriber store with user-plane sessions:
// source address -> IMSI/IMEI, IMSI -> SIM, name -> group.
type memStore struct {
	mu       sync.Mutex
	sessions map[netip.Addr][2]string
	sims     map[string]udr.SIM
	groups   map[string]udr.Group
}

func newMemStore() *memStore {
	return &memStore{sessions: map[netip.Addr][2]string{}, sims: map[string]udr.SIM{}, groups: map[string]udr.Group{}}
}

// attach provisions sim and gives it a session at addr.
func (m *memStore) attach(addr string, sim udr.SIM, imei string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sim.Group == "" {
		sim.Group = udr.DefaultGroup
	}
	if sim.Status == "" {
		sim.Status = udr.StatusActive
	}
	m.sims[sim.IMSI] = sim
	m.sessions[netip.MustParseAddr(addr)] = [2]string{sim.IMSI, imei}
}

func (m *memStore) setGroup(name string, e udr.EndorseConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.groups[name] = udr.Group{Name: name, Endorse: e}
}

func (m *memStore) resolver() StoreResolver {
	return StoreResolver{
		Session: func(_ context.Context, src netip.Addr) (string, string, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			s, ok := m.sessions[src]
			if !ok {
				return "", "", ErrUnknownSource
			}
			return s[0], s[1], nil
		},
		SIM: func(imsi string) (udr.SIM, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			s, ok := m.sims[imsi]
			if !ok {
				return udr.SIM{}, fmt.Errorf("no sim %s", imsi)
			}
			return s, nil
		},
	}
}

// Group returns a configured group, or the defaults.
func (m *memStore) Group(name string) (udr.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == "broken" {
		return udr.Group{}, errors.New("store failure")
	}
	if g, ok := m.groups[name]; ok {
		return g, nil
	}
	return udr.Group{Name: name, Endorse: udr.DefaultEndorse()}, nil
}

func testConfig(alg string) Config {
	c := DefaultConfig()
	c.Algorithm = alg
	return c
}

// newTestKeys opens a key ring in a fresh directory.
func newTestKeys(t testing.TB, cfg Config, clk *clock) (*Keys, string) {
	t.Helper()
	dir := t.TempDir()
	k, err := OpenKeys(dir, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return k, dir
}

func newTestIssuer(t testing.TB, alg string, clk *clock) *Issuer {
	t.Helper()
	cfg := testConfig(alg)
	k, _ := newTestKeys(t, cfg, clk)
	is, err := NewIssuer(k, cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// decoded is a token split into its parts.
type decoded struct {
	headerRaw  string
	payloadRaw string
	claims     map[string]any
	claim      map[string]any // soracom-endorse-claim
	kid, alg   string
}

// verify checks tok with golang-jwt against the key ring, as a server would
// (spec 1.9), at time now, and returns its parts.
func verify(t testing.TB, keys *Keys, tok string, now time.Time) decoded {
	t.Helper()
	d, err := verifyErr(keys, tok, now)
	if err != nil {
		t.Fatalf("token does not verify: %v\n%s", err, tok)
	}
	return d
}

func verifyErr(keys *Keys, tok string, now time.Time) (decoded, error) {
	var d decoded
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return d, fmt.Errorf("%d parts", len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return d, err
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return d, err
	}
	d.headerRaw, d.payloadRaw = string(h), string(p)
	_, err = jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		pub, ok := keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		d.kid, d.alg = kid, tk.Method.Alg()
		return pub, nil
	}, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithAudience(Audience), jwt.WithSubject(Subject), jwt.WithExpirationRequired(), jwt.WithNotBeforeRequired(),
		jwt.WithStrictDecoding())
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(p, &d.claims); err != nil {
		return d, err
	}
	d.claim, _ = d.claims["soracom-endorse-claim"].(map[string]any)
	return d, nil
}

package endorse

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/simgate/simgate/core/udr"
)

// TestStoreResolverWithUDR issues through the endpoint with the identity and
// group settings read from the real subscriber store.
func TestStoreResolverWithUDR(t *testing.T) {
	st, err := udr.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sims := []udr.SIM{
		{IMSI: "295050913244223", MSISDN: "818012345678", SIMID: "8981100001234567890", Group: "iot"},
		{IMSI: "295050913244224"}, // default group, untouched
		{IMSI: "295050913244225", Status: udr.StatusInactive},
	}
	for _, s := range sims {
		s.K, s.OPc = [16]byte{1}, [16]byte{2}
		if err := st.AddSIM(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutGroup(udr.Group{Name: "iot", Endorse: udr.EndorseConfig{Enabled: true, TokenTimeoutSeconds: 300,
		ParametersToEndorse: udr.EndorseParams{IMSI: true, MSISDN: true, SIMID: true}}}); err != nil {
		t.Fatal(err)
	}
	sessions := map[netip.Addr][2]string{
		netip.MustParseAddr("10.45.0.2"): {"295050913244223", "867698047437580"},
		netip.MustParseAddr("10.45.0.3"): {"295050913244224", "867698047437580"},
		netip.MustParseAddr("10.45.0.4"): {"295050913244225", ""},
		netip.MustParseAddr("10.45.0.5"): {"001010000000009", ""}, // a session whose SIM was deleted
	}
	res := StoreResolver{
		Session: func(_ context.Context, src netip.Addr) (string, string, error) {
			s, ok := sessions[src]
			if !ok {
				return "", "", ErrUnknownSource
			}
			return s[0], s[1], nil
		},
		SIM: st.GetSIM,
	}
	clk := newClock()
	is := newTestIssuer(t, ES256, clk)
	h := NewTokenHandler(is, res, GroupsFunc(st.GetGroup), nil)
	get := func(src string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = src
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	e := &env{clk: clk, is: is}
	d := e.token(t, get("10.45.0.2:1000"))
	if want := map[string]any{"imsi": "295050913244223", "msisdn": "818012345678", "simId": "8981100001234567890"}; !reflect.DeepEqual(d.claim, want) {
		t.Errorf("iot claim %v", d.claim)
	}
	if d.claims["exp"].(float64)-d.claims["iat"].(float64) != 300 {
		t.Errorf("iot lifetime %v", d.claims)
	}
	// The default group needs no configuration (udr.DefaultEndorse).
	d = e.token(t, get("[::ffff:10.45.0.3]:1000")) // IPv4-mapped, unmapped by SourceAddr
	if want := map[string]any{"imsi": "295050913244224", "imei": "867698047437580"}; !reflect.DeepEqual(d.claim, want) {
		t.Errorf("default claim %v", d.claim)
	}
	for src, status := range map[string]int{
		"10.45.0.4:1": http.StatusForbidden, // inactive
		"10.45.0.9:1": http.StatusForbidden, // no session
		"garbage":     http.StatusForbidden, // not an address
		"10.45.0.5:1": http.StatusForbidden, // SIM deleted, session lingers
	} {
		if w := get(src); w.Code != status {
			t.Errorf("%s: %d, want %d: %s", src, w.Code, status, w.Body)
		}
	}
	// A store failure is an internal error.
	res.SIM = func(string) (udr.SIM, error) { return udr.SIM{}, errors.New("disk on fire") }
	h = NewTokenHandler(is, res, GroupsFunc(st.GetGroup), nil)
	if w := get("10.45.0.2:1"); w.Code != http.StatusInternalServerError {
		t.Errorf("store failure: %d", w.Code)
	}
	res.SIM = st.GetSIM
	// Errors keep their cause.
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.45.0.5:1"
	if _, err := res.Resolve(r); !errors.Is(err, udr.ErrNotFound) || !errors.Is(err, ErrUnknownSource) {
		t.Errorf("resolve error %v", err)
	}
}

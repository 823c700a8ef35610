package ue

import (
	"runtime"
	"testing"

	"github.com/simgate/simgate/sim/suci"
)

// regScript is the downlink of one registration, recorded once with the
// scripted network. Fresh UEs with the same credentials and USIM state accept
// it as the first did, so replaying it measures the UE side only.
type regScript struct {
	cfg              Config
	auth, smc, accep []byte
}

func newRegScript(b *testing.B, scheme suci.Scheme) regScript {
	b.Helper()
	n := newTestNet(b)
	s := regScript{cfg: n.config(testIMSI, scheme)}
	u := newUE(b, s.cfg)
	ul, err := u.RegistrationRequest()
	if err != nil {
		b.Fatal(err)
	}
	n.registrationRequest(ul)
	s.auth = n.authenticationRequest()
	if err := n.authenticationResponse(one(b, u, s.auth)); err != nil {
		b.Fatal(err)
	}
	s.smc = n.securityModeCommand(n.ueCap, true)
	if _, err := n.securityModeComplete(one(b, u, s.smc)); err != nil {
		b.Fatal(err)
	}
	s.accep = n.registrationAccept()
	one(b, u, s.accep)
	return s
}

// register creates a UE and registers it with the script.
func (s regScript) register(b *testing.B) *UE {
	u, err := New(s.cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := u.RegistrationRequest(); err != nil {
		b.Fatal(err)
	}
	for _, dl := range [][]byte{s.auth, s.smc, s.accep} {
		if ul, err := u.Handle(dl); err != nil || len(ul) != 1 {
			b.Fatalf("Handle: %d messages, %v", len(ul), err)
		}
	}
	return u
}

// BenchmarkRegistration is the UE's CPU cost of one registration: New,
// REGISTRATION REQUEST (SUCI concealment), 5G AKA with the USIM and the key
// hierarchy, the security mode command (keys, MAC check, SECURITY MODE
// COMPLETE) and REGISTRATION ACCEPT/COMPLETE, with 128-NIA2 and 128-NEA0.
func BenchmarkRegistration(b *testing.B) {
	for _, scheme := range []suci.Scheme{suci.SchemeNull, suci.SchemeProfileA, suci.SchemeProfileB} {
		b.Run("scheme-"+scheme.String(), func(b *testing.B) {
			s := newRegScript(b, scheme)
			b.ReportAllocs()
			for b.Loop() {
				s.register(b)
			}
		})
	}
}

// BenchmarkMemoryPerUE reports the heap that registered UEs hold, per UE,
// over 10,000 of them.
func BenchmarkMemoryPerUE(b *testing.B) {
	const count = 10000
	s := newRegScript(b, suci.SchemeNull)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ues := make([]*UE, count)
		for i := range ues {
			ues[i] = s.register(b)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/count, "B/UE")
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/count, "objects/UE")
		runtime.KeepAlive(ues)
	}
}

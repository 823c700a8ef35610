package amf

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/free5gc/nas/message"
	"github.com/free5gc/ngap/aper"
	ngapie "github.com/free5gc/ngap/ie"
	ngapmsg "github.com/free5gc/ngap/message"

	"github.com/simgate/simgate/core/udr"
)

// Benchmarks run the whole chain in one process: the scripted gNB and UEs
// (USIM, NAS security, NGAP), N2 over SCTP-in-UDP on loopback, the AMF, and
// the real AUSF and UDM over a bbolt subscriber store (one fsync per SQN);
// only the SMF is a fake. The UE side's CPU is included in every figure.

// provision stores n SIMs in one batch and returns their IMSIs.
func provision(b *testing.B, h *harness, n int) []string {
	b.Helper()
	sims := make([]udr.SIM, n)
	imsis := make([]string, n)
	for i := range sims {
		imsi := fmt.Sprintf("00101%010d", i)
		imsis[i] = imsi
		sims[i] = udr.SIM{IMSI: imsi, MSISDN: fmt.Sprintf("8190%08d", i), K: udr.DerivedK(keySeed, imsi), OPc: udr.DerivedOPc(keySeed, imsi)}
	}
	if err := h.store.AddSIMs(sims); err != nil {
		b.Fatal(err)
	}
	return imsis
}

// attachWithSession registers the UE and sets up PDU session 1.
func (u *fakeUE) attachWithSession() {
	u.t.Helper()
	u.register(nil)
	u.ulSM(1, fake5GSM(1, message.MsgTypePDUSessEstReq, 0x91), true)
	req, ok := u.recv().(*ngapmsg.PDUSessionResourceSetupRequest)
	if !ok {
		u.t.Fatal("no PDU Session Resource Setup Request")
	}
	resp := []byte{0x00}
	u.g.sendT(u.t, &ngapmsg.PDUSessionResourceSetupResponse{AMFUENGAPID: req.AMFUENGAPID, RANUENGAPID: req.RANUENGAPID,
		PDUSessionResourceSetupListSURes: &ngapie.PDUSessionResourceSetupListSURes{List: []ngapie.PDUSessionResourceSetupItemSURes{{
			PDUSessionID: &ngapie.PDUSessionID{Value: 1}, PDUSessionResourceSetupResponseTransfer: (*aper.OctetString)(&resp)}}}}, 1)
}

// BenchmarkAttach is registration plus one PDU session per UE, many UEs in
// flight on one gNB. attaches/s is the figure for the ">= 1,000/s" target.
func BenchmarkAttach(b *testing.B) {
	h := newHarness(b)
	g := h.gnb(b)
	const pool = 4096
	imsis := provision(b, h, pool)
	ues := make([]*fakeUE, pool)
	for i, imsi := range imsis {
		ues[i] = g.newUE(b, imsi)
	}
	var next atomic.Int64
	var mu sync.Mutex
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)-1) % pool
			mu.Lock()
			u := ues[i]
			g.attach(u) // a fresh connection; a SIM used before re-registers
			u.sc = nil
			mu.Unlock()
			u.attachWithSession()
		}
	})
	el := time.Since(start)
	b.StopTimer()
	eventually(b, "sessions activated", func() bool { return len(h.smf.callsOf("activate")) >= b.N })
	b.ReportMetric(float64(b.N)/el.Seconds(), "attaches/s")
}

// BenchmarkRegistrationLatency paces registrations at 200/s and reports
// the latency percentiles seen by the UE, from Initial UE Message to
// REGISTRATION ACCEPT (the "p99 < 50 ms at 200/s" target). Run it with
// -benchtime=Nx; each registration is a new UE.
func BenchmarkRegistrationLatency(b *testing.B) {
	h := newHarness(b)
	g := h.gnb(b)
	imsis := provision(b, h, b.N)
	ues := make([]*fakeUE, b.N)
	for i, imsi := range imsis {
		ues[i] = g.newUE(b, imsi)
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / 200)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := ues[i]
			t0 := time.Now()
			pdu, initial := u.untilSMC(u.suciValue())
			if _, err := u.takeSMC(pdu); err != nil {
				panic(err)
			}
			u.sendUplink(u.protect(u.smcComplete(initial), message.SecHdrTypeIntegrityProtectedAndCipheredWithNew5gNasSecCtx))
			m, _ := u.recvNAS()
			lat[i] = time.Since(t0)
			if _, ok := m.(*message.RegAccept); !ok {
				panic(fmt.Sprintf("got %T", m))
			}
			ics := u.lastICS
			u.g.sendT(u.t, &ngapmsg.InitialContextSetupResponse{AMFUENGAPID: ics.AMFUENGAPID, RANUENGAPID: ics.RANUENGAPID}, 1)
			u.sendUplink(u.protect(&message.RegComplete{}, message.SecHdrTypeIntegrityProtectedAndCiphered))
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkMemoryPerUE attaches b.N UEs with a PDU session each, drops
// every test-side reference (UEs, gNB routing, fake SMF records), collects
// garbage and reports the heap the core keeps per attached UE (the
// "< 10 KiB per attached UE" target). Run with -benchtime=10000x.
func BenchmarkMemoryPerUE(b *testing.B) {
	h := newHarness(b)
	g := h.gnb(b)
	imsis := provision(b, h, b.N)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			g.newUE(b, imsis[i]).attachWithSession()
		}
	})
	b.StopTimer()
	eventually(b, "all attached", func() bool {
		return h.amf.Stats().Registered == b.N && len(h.smf.callsOf("activate")) == b.N
	})
	g.mu.Lock()
	g.ues = map[int64]chan ngapmsg.Message{}
	g.mu.Unlock()
	h.smf.mu.Lock()
	h.smf.calls = nil
	h.smf.mu.Unlock()
	var after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(b.N)
	b.ReportMetric(per, "heap-B/UE")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	runtime.KeepAlive(h)
}

// BenchmarkNAS measures the AMF's per-message NAS security work for each
// integrity algorithm: unprotect of an uplink UL NAS TRANSPORT and protect
// of a downlink DL NAS TRANSPORT.
func BenchmarkNAS(b *testing.B) {
	for _, alg := range [][2]uint8{{2, 0}, {2, 2}, {1, 1}, {3, 3}} {
		b.Run(fmt.Sprintf("NIA%d-NEA%d", alg[0], alg[1]), func(b *testing.B) {
			kamf := [32]byte{1}
			s, _ := newNASSecurity(kamf, 0, alg[0], alg[1])
			ue := ueSide(nil, kamf, alg[0], alg[1])
			ul, _ := message.Marshal(dlNASTransport(1, make([]byte, 60), 0), ue, message.SecHdrTypeIntegrityProtectedAndCiphered)
			dl := dlNASTransport(1, make([]byte, 60), 0)
			for b.Loop() {
				s.ulNext = 0
				if _, _, err := s.unprotect(ul, false); err != nil {
					b.Fatal(err)
				}
				if _, err := s.protect(dl, message.SecHdrTypeIntegrityProtectedAndCiphered); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNGAPDecode is the reader goroutine's work per message.
func BenchmarkNGAPDecode(b *testing.B) {
	g := &fakeGNB{plmn: []byte{0, 0xf1, 0x10}}
	u := &fakeUE{g: g, ranID: 7, amfID: 9}
	raw, _ := (&ngapmsg.UplinkNASTransport{AMFUENGAPID: &ngapie.AMFUENGAPID{Value: 9}, RANUENGAPID: &ngapie.RANUENGAPID{Value: 7},
		NASPDU: &ngapie.NASPDU{Value: make([]byte, 40)}, UserLocationInformation: u.uli()}).MarshalBinary()
	for b.Loop() {
		if _, err := ngapmsg.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

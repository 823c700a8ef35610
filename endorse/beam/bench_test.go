package beam

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// BenchmarkHTTPEntry measures requests per second through the HTTP entry
// point on loopback: device client -> entry point (resolve, look up, tag,
// sign) -> destination, and the answer back, over kept-alive connections.
func BenchmarkHTTPEntry(b *testing.B) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderSignature) == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer dest.Close()
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{
		HTTPEntryPoint + "/":    {Enabled: true, Destination: dest.URL + "/other"},
		HTTPEntryPoint + "/api": {Enabled: true, Destination: dest.URL + "/in", AddSubscriberHeader: true, AddEquipmentHeader: true, AddMsisdnHeader: true, AddSimIDHeader: true, AddSignature: true, PSK: "topsecret"},
	})
	h, err := NewHTTPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.CloseIdleConnections()
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DialContext: dialFrom(deviceAddr).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := srv.URL + "/api/v1/telemetry?seq=1"

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkTag measures tagging one request: strip, four identity fields,
// timestamp and signature.
func BenchmarkTag(b *testing.B) {
	e := udr.BeamEntry{AddSubscriberHeader: true, AddEquipmentHeader: true, AddMsisdnHeader: true, AddSimIDHeader: true, AddSignature: true, PSK: "topsecret"}
	id := endorse.Identity{IMSI: sim1.IMSI, IMEI: imei1, MSISDN: sim1.MSISDN, SIMID: sim1.SIMID, Active: true}
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"device"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := Tag(h, e, id, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTCPEntryRelay measures relay throughput of one TCP->TCP
// connection on loopback (device -> entry point -> echo destination and
// back), in bytes moved one way.
func BenchmarkTCPEntryRelay(b *testing.B) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer dln.Close()
	go func() {
		for {
			c, err := dln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{TCPEntryPoint: {Enabled: true, Destination: "tcp://" + dln.Addr().String()}})
	te, err := NewTCPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- te.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	go func() { io.Copy(io.Discard, c) }()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

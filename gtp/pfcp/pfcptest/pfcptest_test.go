package pfcptest

import (
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// sink is a socket that loses every write.
type sink struct{ local *net.UDPAddr }

func (s sink) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (s sink) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
func (s sink) LocalAddr() net.Addr                                        { return s.local }
func (s sink) Close() error                                               { return nil }

// TestExpertFilterCatchesMalformed: the filter CheckPFCP relies on flags a
// PFCP message whose IE overruns it, and passes a good heartbeat.
func TestExpertFilterCatchesMalformed(t *testing.T) {
	r := NewRecorder(sink{local: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8805}})
	to := netip.MustParseAddrPort("127.0.0.2:8805")
	// Heartbeat Request, Recovery Time Stamp 0xe0000000.
	good := []byte{0x20, 0x01, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x00, 0x60, 0x00, 0x04, 0xe0, 0, 0, 0}
	// The same with the IE claiming 8 octets of value.
	bad := append([]byte(nil), good...)
	bad[11] = 8
	for _, b := range [][]byte{good, bad} {
		if _, err := r.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := r.WritePcap(path); err != nil {
		t.Fatal(err)
	}
	out := Tshark(t, "-n", "-r", path, "-Y", ExpertFilter, "-T", "fields", "-e", "frame.number")
	if strings.TrimSpace(out) != "2" {
		t.Fatalf("frames flagged: %q, want only frame 2", out)
	}
	if n := r.Count(Out, 1); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

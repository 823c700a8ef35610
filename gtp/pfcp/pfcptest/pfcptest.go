// Package pfcptest owns test doubles for PFCP sockets: a pfcp.PacketConn
// that loses chosen datagrams, and one that records every datagram it
// carries and writes them to a pcap file for tshark.
package pfcptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Conn is the socket interface these wrappers wrap and provide: the same
// as pfcp.PacketConn (not imported, so that pfcp's own tests can use this
// package).
type Conn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// Direction of a datagram relative to the wrapped socket.
type Direction uint8

const (
	Out Direction = iota + 1 // written by the socket's owner
	In                       // read by the socket's owner
)

// DropFunc decides whether to lose a datagram; n counts the datagrams seen
// in that direction so far, from 1. It must be safe for concurrent use.
type DropFunc func(dir Direction, n int, b []byte) bool

// LossyConn loses the datagrams Drop picks, in either direction.
type LossyConn struct {
	Conn
	Drop DropFunc

	mu      sync.Mutex
	in, out int
	dropped int
}

// NewLossyConn wraps c.
func NewLossyConn(c Conn, drop DropFunc) *LossyConn { return &LossyConn{Conn: c, Drop: drop} }

// Dropped is the number of datagrams lost so far.
func (c *LossyConn) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func (c *LossyConn) decide(dir Direction, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := &c.out
	if dir == In {
		n = &c.in
	}
	*n++
	if c.Drop != nil && c.Drop(dir, *n, b) {
		c.dropped++
		return true
	}
	return false
}

// WriteToUDPAddrPort sends b unless it is to be lost (it then reports
// success, as a lost UDP datagram does).
func (c *LossyConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.decide(Out, b) {
		return len(b), nil
	}
	return c.Conn.WriteToUDPAddrPort(b, addr)
}

// ReadFromUDPAddrPort returns the next datagram that is not to be lost.
func (c *LossyConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.Conn.ReadFromUDPAddrPort(b)
		if err != nil || !c.decide(In, b[:n]) {
			return n, from, err
		}
	}
}

// DropNth loses the nth datagram (from 1) of the given types in dir.
// The PFCP message type is octet 2.
func DropNth(dir Direction, nth int, msgTypes ...uint8) DropFunc {
	var mu sync.Mutex
	seen := 0
	return func(d Direction, _ int, b []byte) bool {
		if d != dir || len(b) < 2 {
			return false
		}
		match := len(msgTypes) == 0
		for _, t := range msgTypes {
			match = match || b[1] == t
		}
		if !match {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen == nth
	}
}

// Datagram is one recorded datagram.
type Datagram struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// Recorder records every datagram through a socket.
type Recorder struct {
	Conn
	local netip.AddrPort

	mu    sync.Mutex
	grams []Datagram
}

// NewRecorder wraps c.
func NewRecorder(c Conn) *Recorder {
	r := &Recorder{Conn: c}
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		r.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return r
}

func (r *Recorder) add(src, dst netip.AddrPort, b []byte) {
	r.mu.Lock()
	r.grams = append(r.grams, Datagram{Time: time.Now(), Src: src, Dst: dst, Payload: append([]byte(nil), b...)})
	r.mu.Unlock()
}

// WriteToUDPAddrPort records and sends b. It records first, so that an
// answer read before the write returns is recorded after it.
func (r *Recorder) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	r.add(r.local, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), b)
	return r.Conn.WriteToUDPAddrPort(b, addr)
}

// ReadFromUDPAddrPort reads and records a datagram.
func (r *Recorder) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := r.Conn.ReadFromUDPAddrPort(b)
	if err == nil {
		r.add(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), r.local, b[:n])
	}
	return n, from, err
}

// Datagrams returns what was recorded so far.
func (r *Recorder) Datagrams() []Datagram {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Datagram(nil), r.grams...)
}

// WritePcap writes the recorded datagrams to path as Ethernet/IPv4/UDP
// frames. Only IPv4 endpoints are supported.
func (r *Recorder) WritePcap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return err
	}
	for i, d := range r.Datagrams() {
		frame, err := udpFrame(d, uint16(i))
		if err != nil {
			f.Close()
			return err
		}
		ci := gopacket.CaptureInfo{Timestamp: d.Time, CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func udpFrame(d Datagram, id uint16) ([]byte, error) {
	if !d.Src.Addr().Is4() || !d.Dst.Addr().Is4() {
		return nil, errors.New("pfcptest: only IPv4 datagrams can be written")
	}
	src, dst := d.Src.Addr().As4(), d.Dst.Addr().As4()
	eth := &layers.Ethernet{
		SrcMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		DstMAC:       net.HardwareAddr{0x02, 0, 0, 0, 0, 2},
		EthernetType: layers.EthernetTypeIPv4,
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP, SrcIP: src[:], DstIP: dst[:]}
	udp := &layers.UDP{SrcPort: layers.UDPPort(d.Src.Port()), DstPort: layers.UDPPort(d.Dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(d.Payload)); err != nil {
		return nil, fmt.Errorf("pfcptest: frame: %w", err)
	}
	return buf.Bytes(), nil
}

// Tshark runs tshark with args and returns its standard output. Without
// tshark the test is skipped with the reason, except under CI=true, where
// it fails.
func Tshark(t testing.TB, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tshark not found (%v); CI must have it (Debian package tshark)", err)
		}
		t.Skipf("tshark not found (%v); install the Debian package tshark", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// ExpertFilter selects frames tshark finds malformed or flags at expert
// severity Error (tshark 4.0: the severity values are PI_ERROR etc.).
const ExpertFilter = `_ws.malformed || _ws.expert.severity >= "Error"`

// CheckPFCP writes r's datagrams to a pcap in dir, has tshark decode them as
// PFCP (on the given UDP ports as well as 8805) and fails the test if any
// frame is malformed or has an expert error, or if a frame is not PFCP. It
// returns the pcap path.
func CheckPFCP(t testing.TB, r *Recorder, dir string, ports ...uint16) string {
	t.Helper()
	path := filepath.Join(dir, "pfcp.pcap")
	if err := r.WritePcap(path); err != nil {
		t.Fatalf("write pcap: %v", err)
	}
	args := []string{"-n", "-r", path}
	for _, p := range ports {
		args = append(args, "-d", fmt.Sprintf("udp.port==%d,pfcp", p))
	}
	if bad := Tshark(t, append(args, "-Y", ExpertFilter)...); strings.TrimSpace(bad) != "" {
		detail := Tshark(t, append(args, "-V", "-Y", ExpertFilter)...)
		t.Fatalf("tshark flags frames of %s:\n%s\n%s", path, bad, detail)
	}
	notPFCP := Tshark(t, append(args, "-Y", "!pfcp")...)
	if strings.TrimSpace(notPFCP) != "" {
		t.Fatalf("frames tshark does not decode as PFCP:\n%s", notPFCP)
	}
	return path
}

// Count is the number of recorded datagrams of PFCP message type msgType
// (octet 2) that went in direction dir.
func (r *Recorder) Count(dir Direction, msgType uint8) int {
	n := 0
	for _, d := range r.Datagrams() {
		if len(d.Payload) < 2 || d.Payload[1] != msgType {
			continue
		}
		if (d.Src == r.local) == (dir == Out) {
			n++
		}
	}
	return n
}

package capture

import (
	"net"
	"net/netip"
)

// PacketConn is a datagram socket as gtp/pfcp.Start takes it (the same
// method set as pfcp.PacketConn, which this package does not import);
// *net.UDPConn is one.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// WrapPacketConn returns pc with every datagram it carries tapped into
// tap: datagrams read, and datagrams written. A write is tapped before it is
// sent, so that an answer read before the write returns comes after it in
// the capture. The local address is pc's at the time of the call. With a
// nil tap it returns pc itself.
func WrapPacketConn(pc PacketConn, tap *Interface) PacketConn {
	if tap == nil {
		return pc
	}
	c := &tappedConn{PacketConn: pc, tap: tap}
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		c.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return c
}

type tappedConn struct {
	PacketConn
	tap   *Interface
	local netip.AddrPort
}

func (c *tappedConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.PacketConn.ReadFromUDPAddrPort(b)
	if err == nil {
		c.tap.Datagram(false, c.local, from, b[:n])
	}
	return n, from, err
}

func (c *tappedConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.tap.Datagram(true, c.local, addr, b)
	return c.PacketConn.WriteToUDPAddrPort(b, addr)
}

package device

import (
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link is the stack's NIC, the UEs' side of the radio: a point-to-point IP
// link with no link-layer header and no queue. Each packet the stack sends
// is copied once into a pooled view and handed, on the sending goroutine,
// to the Stack's uplink, which picks the UE by source address.
type link struct {
	mtu uint32
	out interface{ uplink(src [4]byte, pkt []byte) }

	mu   sync.RWMutex
	disp stack.NetworkDispatcher
}

var _ stack.LinkEndpoint = (*link)(nil)

func newLink(mtu uint32, out interface{ uplink([4]byte, []byte) }) *link {
	return &link{mtu: mtu, out: out}
}

// inject hands one inbound IPv4 packet to the stack; pkt is copied.
func (l *link) inject(pkt []byte) bool {
	l.mu.RLock()
	d := l.disp
	l.mu.RUnlock()
	if d == nil {
		return false
	}
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	d.DeliverNetworkPacket(header.IPv4ProtocolNumber, pb)
	pb.DecRef()
	return true
}

// WritePackets implements stack.LinkWriter.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		n++
		if pkt.NetworkProtocolNumber != header.IPv4ProtocolNumber {
			continue
		}
		src := header.IPv4(pkt.NetworkHeader().Slice()).SourceAddress().As4()
		v := pkt.ToView() // pooled
		l.out.uplink(src, v.AsSlice())
		v.Release()
	}
	return n, nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *link) MTU() uint32 { return l.mtu }

// SetMTU implements stack.NetworkLinkEndpoint; the MTU is fixed.
func (l *link) SetMTU(uint32) {}

// MaxHeaderLength implements stack.NetworkLinkEndpoint: no link header.
func (l *link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: none on an IP link.
func (l *link) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (l *link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint. None: checksums are
// computed and checked (packets cross a real, if simulated, network) and no
// link address is ever resolved.
func (l *link) Capabilities() stack.LinkEndpointCapabilities { return stack.CapabilityNone }

// Attach implements stack.NetworkLinkEndpoint.
func (l *link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.disp = d
	l.mu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *link) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.disp != nil
}

// Wait implements stack.NetworkLinkEndpoint: nothing runs on its own.
func (l *link) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (l *link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: no link header.
func (l *link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: no link header.
func (l *link) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint: later injections are dropped.
func (l *link) Close() {
	l.mu.Lock()
	l.disp = nil
	l.mu.Unlock()
}

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (l *link) SetOnCloseAction(func()) {}

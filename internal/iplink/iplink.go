// Package iplink is the NIC of simgate's userspace IP stacks (gVisor): a
// point-to-point IPv4 link with no link-layer header and no queue. Packets
// the stack sends are handed to an output function on the sending
// goroutine; Inject hands inbound packets to the stack. A packet costs one
// copy each way and no goroutine switch.
package iplink

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Link is a stack.LinkEndpoint. It is safe for concurrent use.
type Link struct {
	mtu uint32

	mu   sync.RWMutex
	disp stack.NetworkDispatcher

	out     atomic.Pointer[func([]byte)]
	dropped atomic.Uint64 // packets sent with no output set
}

var _ stack.LinkEndpoint = (*Link)(nil)

// New returns a link with the given MTU and no output.
func New(mtu uint32) *Link { return &Link{mtu: mtu} }

// SetOutput sets where the stack's IPv4 packets go; nil drops them. f runs
// on the stack's sending goroutine, possibly several at once and from inside
// Inject (an echo reply, a RST); pkt is valid only during the call.
func (l *Link) SetOutput(f func(pkt []byte)) {
	if f == nil {
		l.out.Store(nil)
		return
	}
	l.out.Store(&f)
}

// Dropped counts the packets sent while no output was set.
func (l *Link) Dropped() uint64 { return l.dropped.Load() }

// Inject delivers one inbound IPv4 packet to the stack; pkt is copied. It
// reports false when the link is not attached to a stack.
func (l *Link) Inject(pkt []byte) bool {
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

// WritePackets implements stack.LinkWriter: each IPv4 packet is copied once
// into a pooled view and passed to the output.
func (l *Link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	out := l.out.Load()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		n++
		if pkt.NetworkProtocolNumber != header.IPv4ProtocolNumber {
			continue
		}
		if out == nil {
			l.dropped.Add(1)
			continue
		}
		v := pkt.ToView() // pooled
		(*out)(v.AsSlice())
		v.Release()
	}
	return n, nil
}

// MTU implements stack.NetworkLinkEndpoint.
func (l *Link) MTU() uint32 { return l.mtu }

// SetMTU implements stack.NetworkLinkEndpoint; the MTU is fixed.
func (l *Link) SetMTU(uint32) {}

// MaxHeaderLength implements stack.NetworkLinkEndpoint: no link header.
func (l *Link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.NetworkLinkEndpoint: none on an IP link.
func (l *Link) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.NetworkLinkEndpoint.
func (l *Link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.NetworkLinkEndpoint. None: checksums are
// computed and checked (packets cross a real, if simulated, network) and no
// link address is ever resolved.
func (l *Link) Capabilities() stack.LinkEndpointCapabilities { return stack.CapabilityNone }

// Attach implements stack.NetworkLinkEndpoint.
func (l *Link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.disp = d
	l.mu.Unlock()
}

// IsAttached implements stack.NetworkLinkEndpoint.
func (l *Link) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.disp != nil
}

// Wait implements stack.NetworkLinkEndpoint: nothing runs on its own.
func (l *Link) Wait() {}

// ARPHardwareType implements stack.NetworkLinkEndpoint.
func (l *Link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.NetworkLinkEndpoint: no link header.
func (l *Link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.NetworkLinkEndpoint: no link header.
func (l *Link) ParseHeader(*stack.PacketBuffer) bool { return true }

// Close implements stack.NetworkLinkEndpoint: later injections are dropped.
func (l *Link) Close() { l.Attach(nil) }

// SetOnCloseAction implements stack.NetworkLinkEndpoint.
func (l *Link) SetOnCloseAction(func()) {}

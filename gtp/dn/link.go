package dn

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link is the stack's NIC: a point-to-point IP link with no link-layer
// header. Packets the stack sends are flattened into a pooled buffer and
// handed to the output function synchronously; inbound packets are given to
// inject. It does no queueing of its own, so a packet costs one copy each
// way and no goroutine switch.
type link struct {
	mtu uint32

	mu   sync.RWMutex
	disp stack.NetworkDispatcher

	out  atomic.Pointer[func([]byte)]
	drop atomic.Uint64 // packets sent with no output set

	pool sync.Pool // *[]byte of cap mtu
}

var _ stack.LinkEndpoint = (*link)(nil)

func newLink(mtu uint32) *link {
	l := &link{mtu: mtu}
	l.pool.New = func() any { b := make([]byte, mtu); return &b }
	return l
}

// setOutput sets where sent packets go; nil drops them.
func (l *link) setOutput(f func([]byte)) {
	if f == nil {
		l.out.Store(nil)
		return
	}
	l.out.Store(&f)
}

// inject delivers one inbound IPv4 packet; pkt is copied.
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

// WritePackets implements stack.LinkWriter: each packet is flattened and
// passed to the output function, which must not keep the slice.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	out := l.out.Load()
	n := 0
	for _, pkt := range pkts.AsSlice() {
		n++
		if out == nil {
			l.drop.Add(1)
			continue
		}
		size := pkt.Size()
		var bp *[]byte
		var b []byte
		if size <= int(l.mtu) {
			bp = l.pool.Get().(*[]byte)
			b = (*bp)[:size]
		} else {
			b = make([]byte, size) // larger than the MTU: not expected
		}
		flatten(b, pkt)
		(*out)(b)
		if bp != nil {
			l.pool.Put(bp)
		}
	}
	return n, nil
}

// flatten copies the whole packet (headers and payload) into b, which has
// exactly its size, without the allocation of pkt.AsSlices.
func flatten(b []byte, pkt *stack.PacketBuffer) {
	vl, off := pkt.AsViewList()
	n := 0
	for v := vl.Front(); v != nil && n < len(b); v = v.Next() {
		s := v.AsSlice()
		if off >= len(s) {
			off -= len(s)
			continue
		}
		n += copy(b[n:], s[off:])
		off = 0
	}
}

func (l *link) MTU() uint32                      { return l.mtu }
func (l *link) SetMTU(uint32)                    {}
func (l *link) MaxHeaderLength() uint16          { return 0 }
func (l *link) LinkAddress() tcpip.LinkAddress   { return "" }
func (l *link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities: none. Checksums are computed and verified (a device's
// packets are checked as a host would; skipping that saved only a few per
// cent in BenchmarkNATTCP), and no link address is resolved.
func (l *link) Capabilities() stack.LinkEndpointCapabilities { return stack.CapabilityNone }

func (l *link) Attach(d stack.NetworkDispatcher) {
	l.mu.Lock()
	l.disp = d
	l.mu.Unlock()
}

func (l *link) IsAttached() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.disp != nil
}

func (l *link) Wait()                                   {}
func (l *link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (l *link) AddHeader(*stack.PacketBuffer)           {}
func (l *link) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (l *link) Close()                                  { l.Attach(nil) }
func (l *link) SetOnCloseAction(func())                 {}

package gtpu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// gsoMaxBytes bounds the payload of one segmented send: what fits in a
// 64 KiB IP packet, which the kernel builds before it segments.
const gsoMaxBytes = 0xffff - 40 - 8

// writer is the scratch of one writing goroutine: the datagrams queued for
// the next sendmmsg, and the messages they become.
type writer struct {
	iov   [][]byte // one per datagram
	dst   []netip.AddrPort
	addrs []net.UDPAddr // the destinations as x/net wants them
	ips   [][16]byte    // their IP bytes
	n     int           // datagrams queued

	msgs  []ipv4.Message // one per destination run (GSO) or datagram
	first []int          // the first datagram of each message, and n
	oob   []byte         // a UDP_SEGMENT control message per message
	one   [1]ipv4.Message
}

func newWriter(n int) writer {
	return writer{
		iov:   make([][]byte, n),
		dst:   make([]netip.AddrPort, n),
		addrs: make([]net.UDPAddr, n),
		ips:   make([][16]byte, n),
		msgs:  make([]ipv4.Message, n),
		first: make([]int, n+1),
		oob:   make([]byte, n*gsoSpace),
	}
}

func (w *writer) full() bool { return w.n == len(w.iov) }

// add queues b to be sent to to; b must stay unchanged until flush.
func (w *writer) add(b []byte, to netip.AddrPort) {
	i := w.n
	w.iov[i], w.dst[i] = b, to
	a, ip := &w.addrs[i], to.Addr()
	if ip.Is4() {
		v := ip.As4()
		copy(w.ips[i][:4], v[:])
		a.IP = w.ips[i][:4]
	} else {
		w.ips[i] = ip.As16()
		a.IP = w.ips[i][:]
	}
	a.Port, a.Zone = int(to.Port()), ip.Zone()
	w.n++
}

// pack turns the queued datagrams into messages. With gso, a run of
// datagrams to one destination, all of one size but the last, which may
// be shorter, becomes one message that the kernel segments (UDP GSO,
// UDP_SEGMENT): one pass down the stack instead of one per datagram.
func (w *writer) pack(gso bool) int {
	m := 0
	for i := 0; i < w.n; m++ {
		size, j := len(w.iov[i]), i+1
		if gso && size > 0 {
			total := size
			for j < w.n && j-i < gsoMaxSegments && w.dst[j] == w.dst[i] {
				l := len(w.iov[j])
				if l == 0 || l > size || total+l > gsoMaxBytes {
					break
				}
				total += l
				j++
				if l < size {
					break // a shorter datagram ends the run
				}
			}
		}
		msg := &w.msgs[m]
		msg.Buffers, msg.Addr, msg.OOB = w.iov[i:j], &w.addrs[i], nil
		if j-i > 1 {
			msg.OOB = putGSO(w.oob[m*gsoSpace:(m+1)*gsoSpace], uint16(size))
		}
		w.first[m] = i
		i = j
	}
	w.first[m] = w.n
	return m
}

// flush sends the queued datagrams. A datagram the socket refuses is
// dropped (DropSend) and the rest still go; the first error is returned.
func (c *Conn) flush(w *writer) (int, error) {
	// The tap sees a datagram before it goes, so that an answer to it,
	// read before the write returns, comes after it.
	if t := c.cfg.Tap; t != nil {
		for j := range w.n {
			t.Datagram(true, c.local, w.dst[j], w.iov[j])
		}
	}
	nm := w.pack(c.gso.Load())
	var first error
	sent := 0
	for m := 0; m < nm; {
		k, err := c.bc.WriteBatch(w.msgs[m:nm], 0)
		k = max(k, 0) // -1 from the syscall on error
		sent += c.countSent(w, w.first[m], w.first[m+k])
		m += k
		if err == nil && k > 0 {
			continue
		}
		if err == nil {
			err = errors.New("sendmmsg sent nothing")
		}
		if errors.Is(err, net.ErrClosed) {
			c.stats.drops[DropSend].Add(uint64(w.n - w.first[m]))
			if first == nil {
				first = fmt.Errorf("gtpu: write %s: %w", c.local, err)
			}
			break
		}
		// Message m was refused. A segmented one is sent again datagram
		// by datagram: the route may not take GSO (EIO: its device cannot
		// checksum; EINVAL: segments above its MTU, which plain sends
		// fragment).
		if len(w.msgs[m].Buffers) > 1 {
			if gsoUnsupported(err) {
				c.gso.Store(false)
			}
			for d := w.first[m]; d < w.first[m+1]; d++ {
				w.one[0] = ipv4.Message{Buffers: w.iov[d : d+1], Addr: &w.addrs[d]}
				if k, err := c.bc.WriteBatch(w.one[:], 0); k == 1 && err == nil {
					sent += c.countSent(w, d, d+1)
				} else {
					c.stats.drops[DropSend].Add(1)
					if first == nil && err != nil {
						first = fmt.Errorf("gtpu: write %s to %s: %w", c.local, w.dst[d], err)
					}
				}
			}
		} else {
			c.stats.drops[DropSend].Add(1)
			if first == nil {
				first = fmt.Errorf("gtpu: write %s to %s: %w", c.local, w.dst[w.first[m]], err)
			}
		}
		m++
	}
	clear(w.iov[:w.n])
	for i := range nm {
		w.msgs[i].Buffers = nil
	}
	w.one[0] = ipv4.Message{}
	w.n = 0
	return sent, first
}

// countSent counts datagrams from..to as sent and returns how many.
func (c *Conn) countSent(w *writer, from, to int) int {
	var bytes uint64
	for d := from; d < to; d++ {
		bytes += uint64(len(w.iov[d]))
	}
	c.stats.txPackets.Add(uint64(to - from))
	c.stats.txBytes.Add(bytes)
	return to - from
}

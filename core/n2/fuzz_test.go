package n2

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func wireSeeds(f *testing.F) {
	f.Add([]byte{})
	f.Add(initWith([]byte{0, 5, 0, 8, 127, 0, 0, 1}, []byte{0x80, 0, 0, 4}))
	f.Add(testInit(40000, NGAPPort, 0, 1, 10, 10))
	f.Add(packet(chunk(chunkHeartbeat)))
	f.Add(packet(chunk(3, 0, 0, 0, 9), chunk(chunkHeartbeatAck, 0, 1, 0, 4), chunk(0, 1, 2)))
	f.Add(append(packet(chunk(chunkHeartbeat)), 0xff))
}

// FuzzWire: the SCTP header code never panics on datagrams from the network,
// and what it builds is well formed.
func FuzzWire(f *testing.F) {
	wireSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if info, err := checkInit(b, NGAPPort); err == nil {
			if !checksumOK(b) || info.tag == 0 || info.inStreams == 0 || info.outStreams == 0 {
				t.Fatalf("checkInit accepted %x", b)
			}
			if _, ok := peekInit(b); !ok {
				t.Fatal("peekInit rejects what checkInit accepts")
			}
		}
		peekInit(b)
		if len(b) >= commonHeaderLen {
			in := bytes.Clone(b)
			out := fixHeartbeats(b, 42)
			if !bytes.Equal(b, in) {
				t.Fatal("fixHeartbeats modified its input")
			}
			if len(out) != len(b) && !checksumOK(out) {
				t.Fatal("repaired packet has a bad checksum")
			}
			if len(out) < len(b) {
				t.Fatal("fixHeartbeats shrank the packet")
			}
		}
		if s, changed := stripInitAddresses(bytes.Clone(b)); changed {
			if len(s) > len(b) || s[commonHeaderLen] != chunkInit {
				t.Fatalf("stripInitAddresses(%x) = %x", b, s)
			}
			for _, p := range initParams(t, s) {
				if addressParams[p] {
					t.Fatalf("parameter %d left in %x", p, s)
				}
			}
		}
		out, removed := copyWithout(b, chunkHeartbeatAck)
		if len(out) > len(b) || (!removed && !bytes.Equal(out, b)) {
			t.Fatalf("copyWithout(%x) = %x, %v", b, out, removed)
		}
	})
}

// FuzzDeliver feeds datagrams to a dialer's link: nothing panics, and what
// reaches the stack has its ports translated and a good checksum.
func FuzzDeliver(f *testing.F) {
	wireSeeds(f)
	f.Add(packet(chunk(3, 0, 0, 0, 9)))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := newLink(&endpoint{}, netip.MustParseAddrPort("127.0.0.1:9899"), Config{}.withDefaults())
		l.translate, l.localPort, l.remotePort = true, 0x1388, NGAPPort
		l.stackPorts.Store(5000<<16 | 5000)
		if len(b) >= commonHeaderLen {
			// Make some inputs pass the checks so that the rewrite runs.
			b = bytes.Clone(b)
			b[0], b[1], b[2], b[3] = 0x96, 0x0c, 0x13, 0x88
			setChecksum(b)
		}
		l.deliver(b)
		if p, ok := l.in.pop(); ok {
			src, dst, err := ports(p)
			if err != nil || src != 5000 || dst != 5000 || !checksumOK(p) {
				t.Fatalf("stack got %x", p)
			}
		}
	})
}

// initParams lists the parameter types of an INIT's chunk.
func initParams(t *testing.T, p []byte) []uint16 {
	t.Helper()
	c := p[commonHeaderLen:]
	l := int(binary.BigEndian.Uint16(c[2:]))
	if l > len(c) {
		t.Fatalf("chunk length %d past the packet (%d)", l, len(c))
	}
	var types []uint16
	for r := chunkHeaderLen + initFixedLen; r+4 <= l; {
		types = append(types, binary.BigEndian.Uint16(c[r:]))
		pl := int(binary.BigEndian.Uint16(c[r+2:]))
		if pl < 4 {
			t.Fatalf("parameter length %d", pl)
		}
		r += (pl + 3) &^ 3
	}
	return types
}

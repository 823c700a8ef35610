package gtpu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// hx decodes hex with spaces, for octets laid out as in TS 29.281.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Two G-PDUs captured on the wire, kept in gopacket's layers/gtp_test.go
// (testGTPPacket, testGTPPacketWithEH; the GTP-U part from offset 42): an
// ICMP echo with a sequence number, and one with a PDCP PDU Number
// extension header (type 0xc0).
const (
	capturedSeq = "32ff005800000001267b000045000054067600004001982fc0a828b2ca0b289e000039e90000287d0611204b7f3a0d0008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
	capturedEH  = "36ff005c00100657000500c0010904004500005406a5000040019800c0a828b2ca0b289e0000e3b6000028ac3511204ba63d0d0008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637"
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Header
		payload string // hex; "" means empty
		err     error
	}{
		{
			name:    "captured G-PDU with sequence number",
			in:      capturedSeq,
			want:    Header{Flags: 0x32, Type: MsgGPDU, Length: 0x58, TEID: 1, Seq: 0x267b},
			payload: capturedSeq[24:],
		},
		{
			// TS 29.281 5.2.1: 0xc0 (PDCP PDU Number) must be comprehended
			// by an endpoint; N3 endpoints here do not use it.
			name: "captured G-PDU with PDCP PDU Number extension",
			in:   capturedEH,
			want: Header{Flags: 0x36, Type: MsgGPDU, Length: 0x5c, TEID: 0x00100657, Seq: 5, UnknownExt: 0xc0},
			err:  ErrUnknownExtension,
		},
		{
			name:    "plain G-PDU (TS 29.281 5.1, no optional fields)",
			in:      "30ff0004 deadbeef 45000014",
			want:    Header{Flags: 0x30, Type: MsgGPDU, Length: 4, TEID: 0xdeadbeef},
			payload: "45000014",
		},
		{
			name:    "UL PDU Session Container, QFI 9 (TS 38.415 5.5.2.2)",
			in:      "34ff000c 00000001 00000085 01100900 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}},
			payload: "deadbeef",
		},
		{
			name:    "DL PDU Session Container, RQI, QFI 5 (TS 38.415 5.5.2.1)",
			in:      "34ff000c 12345678 00000085 01004500 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 0x12345678, HasPDUSession: true, PDUSession: PDUSession{Type: DL, QFI: 5, RQI: true}},
			payload: "deadbeef",
		},
		{
			name:    "DL with PPP and PPI 3: two units, padded",
			in:      "34ff0010 00000007 00000085 02008160 00000000 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 7, HasPDUSession: true, PDUSession: PDUSession{Type: DL, QFI: 1, PPP: true, PPI: 3}},
			payload: "deadbeef",
		},
		{
			name:    "DL with QMP: DL Sending Time Stamp",
			in:      "34ff0014 00000007 00000085 03080501 02030405 06070800 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 20, TEID: 7, HasPDUSession: true, PDUSession: PDUSession{Type: DL, QFI: 5}},
			payload: "deadbeef",
		},
		{
			name:    "UL with SNP: UL QFI Sequence Number",
			in:      "34ff0010 00000007 00000085 02110900 002a0000 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 7, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}},
			payload: "deadbeef",
		},
		{
			name:    "chain: UDP Port, then PDU Session Container",
			in:      "34ff0010 00000001 00000040 01086885 01100900 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 1, HasUDPPort: true, UDPPort: 2152, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}},
			payload: "deadbeef",
		},
		{
			name:    "unknown extension not requiring comprehension is skipped",
			in:      "34ff0010 00000001 00000020 01aa0085 01100900 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 1, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}},
			payload: "deadbeef",
		},
		{
			name:    "S and PN: sequence and N-PDU numbers",
			in:      "33ff0008 00000001 123456ff deadbeef",
			want:    Header{Flags: 0x33, Type: MsgGPDU, Length: 8, TEID: 1, Seq: 0x1234, NPDU: 0x56},
			payload: "deadbeef",
		},
		{
			name:    "PN only: the sequence field is not interpreted",
			in:      "31ff0008 00000001 12345600 deadbeef",
			want:    Header{Flags: 0x31, Type: MsgGPDU, Length: 8, TEID: 1, NPDU: 0x56},
			payload: "deadbeef",
		},
		{
			name:    "E with next type 0: no extension header",
			in:      "34ff0008 00000001 00000000 deadbeef",
			want:    Header{Flags: 0x34, Type: MsgGPDU, Length: 8, TEID: 1},
			payload: "deadbeef",
		},
		{
			name: "empty G-PDU",
			in:   "30ff0000 00000001",
			want: Header{Flags: 0x30, Type: MsgGPDU, TEID: 1},
		},
		{
			name:    "Echo Request",
			in:      "32010004 00000000 002a0000",
			want:    Header{Flags: 0x32, Type: MsgEchoRequest, Length: 4, Seq: 42},
			payload: "",
		},
		// Errors.
		{name: "shorter than 8 octets", in: "30ff0000 000000", err: ErrShort},
		{name: "empty", in: "", err: ErrShort},
		{name: "version 2", in: "48ff0004 00000001 deadbeef", err: ErrVersion},
		{name: "version 0", in: "10ff0004 00000001 deadbeef", err: ErrVersion},
		{name: "GTP' (PT=0)", in: "20ff0004 00000001 deadbeef", err: ErrProtocolType},
		{name: "length beyond datagram", in: "30ff0005 00000001 deadbeef", err: ErrLength, want: Header{Flags: 0x30, Type: MsgGPDU, Length: 5, TEID: 1}},
		{name: "trailing octets", in: "30ff0003 00000001 deadbeef", err: ErrLength, want: Header{Flags: 0x30, Type: MsgGPDU, Length: 3, TEID: 1}},
		{name: "E set, no optional octets", in: "34ff0002 00000001 dead", err: ErrLength, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 2, TEID: 1}},
		{name: "extension of length 0", in: "34ff0008 00000001 00000085 00100900", err: ErrExtLength, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 8, TEID: 1}},
		{name: "extension runs past the message", in: "34ff0006 00000001 00000085 0110", err: ErrExtTruncated, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 6, TEID: 1}},
		{name: "extension longer than the message", in: "34ff000c 00000001 00000085 03100900 deadbeef", err: ErrExtTruncated, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1}},
		{name: "chain announces a header after the end", in: "34ff0008 00000001 00000085 01100985", err: ErrExtTruncated,
			want: Header{Flags: 0x34, Type: MsgGPDU, Length: 8, TEID: 1, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}}},
		{name: "unknown comprehension-required extension", in: "34ff000c 00000001 00000081 01000000 deadbeef", err: ErrUnknownExtension,
			want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1, UnknownExt: 0x81}},
		{name: "reserved PDU type 2", in: "34ff000c 00000001 00000085 01200900 deadbeef", err: ErrPDUSession, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1}},
		{name: "DL QMP without its time stamp", in: "34ff000c 00000001 00000085 01080500 deadbeef", err: ErrPDUSession, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1}},
		{name: "DL PPP without PPI room", in: "34ff000c 00000001 00000085 01008100 deadbeef", err: ErrPDUSession, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1}},
		{name: "UL SNP without its sequence number", in: "34ff000c 00000001 00000085 01110900 deadbeef", err: ErrPDUSession, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 12, TEID: 1}},
		{name: "UL QMP without its time stamps", in: "34ff0010 00000001 00000085 02180900 00000000 deadbeef", err: ErrPDUSession, want: Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 1}},
		{name: "two PDU Session Containers", in: "34ff0010 00000001 00000085 01100985 01100900 deadbeef", err: ErrPDUSession,
			want: Header{Flags: 0x34, Type: MsgGPDU, Length: 16, TEID: 1, HasPDUSession: true, PDUSession: PDUSession{Type: UL, QFI: 9}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := hx(t, tc.in)
			var h Header
			h.TEID = 0xffffffff // Decode must reset
			payload, err := h.Decode(in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if h != tc.want {
				t.Errorf("header\n got %+v\nwant %+v", h, tc.want)
			}
			if tc.err != nil {
				if payload != nil {
					t.Errorf("payload %x with an error", payload)
				}
				return
			}
			if want := hx(t, tc.payload); !bytes.Equal(payload, want) {
				t.Errorf("payload %x, want %x", payload, want)
			}
			// The payload is in place: the tail of the input.
			if len(payload) > 0 && &payload[0] != &in[len(in)-len(payload)] {
				t.Error("payload is not a sub-slice of the input")
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	for e := Error(1); e < numErrors; e++ {
		if s := e.Error(); !strings.HasPrefix(s, "gtpu: ") || strings.HasPrefix(s, "gtpu: error ") {
			t.Errorf("Error(%d) = %q", e, s)
		}
	}
	if s := Error(200).Error(); s != "gtpu: error 200" {
		t.Errorf("Error(200) = %q", s)
	}
}

func TestPrependGPDU(t *testing.T) {
	payload := hx(t, "45000014 00000000 40110000 0a2d0001 0a2d0002")
	cases := []struct {
		name string
		teid uint32
		psc  *PDUSession
		want string // the header
	}{
		{"no container", 0xdeadbeef, nil, "30ff0014 deadbeef"},
		// Length = 4 optional + 4 container + 20 payload = 28.
		{"UL QFI 9", 1, &PDUSession{Type: UL, QFI: 9}, "34ff001c 00000001 00000085 01100900"},
		{"DL QFI 63 RQI", 0x01020304, &PDUSession{Type: DL, QFI: 63, RQI: true}, "34ff001c 01020304 00000085 01007f00"},
		{"DL PPP PPI 7", 2, &PDUSession{Type: DL, QFI: 1, PPP: true, PPI: 7}, "34ff0020 00000002 00000085 020081e0 00000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := hx(t, tc.want)
			if n := GPDUHeaderLen(tc.psc); n != len(hdr) {
				t.Fatalf("GPDUHeaderLen %d, want %d", n, len(hdr))
			}
			buf := make([]byte, 40+len(payload))
			for i := range buf {
				buf[i] = 0xee // headroom garbage must be overwritten
			}
			copy(buf[40:], payload)
			got, err := PrependGPDU(buf, 40, tc.teid, tc.psc)
			if err != nil {
				t.Fatal(err)
			}
			if want := append(hdr, payload...); !bytes.Equal(got, want) {
				t.Fatalf("G-PDU\n got %x\nwant %x", got, want)
			}
			if &got[len(got)-1] != &buf[len(buf)-1] {
				t.Error("G-PDU not built in place")
			}
			var h Header
			p, err := h.Decode(got)
			if err != nil {
				t.Fatal(err)
			}
			if h.TEID != tc.teid || h.Type != MsgGPDU || !bytes.Equal(p, payload) {
				t.Errorf("decoded %+v payload %x", h, p)
			}
			if tc.psc != nil && (!h.HasPDUSession || h.PDUSession != *tc.psc) {
				t.Errorf("PDU session %+v, want %+v", h.PDUSession, *tc.psc)
			}
		})
	}
}

func TestPrependGPDUErrors(t *testing.T) {
	buf := make([]byte, 100)
	cases := []struct {
		name string
		buf  []byte
		off  int
		psc  *PDUSession
		err  error
	}{
		{"no headroom", buf, 7, nil, ErrHeadroom},
		{"no headroom for the container", buf, 15, &PDUSession{Type: UL}, ErrHeadroom},
		{"offset past the buffer", buf, 101, nil, ErrHeadroom},
		{"negative offset", buf, -1, nil, ErrHeadroom},
		{"QFI over 6 bits", buf, 50, &PDUSession{Type: UL, QFI: 64}, ErrField},
		{"PPI over 3 bits", buf, 50, &PDUSession{Type: DL, PPP: true, PPI: 8}, ErrField},
		{"PPI without PPP", buf, 50, &PDUSession{Type: DL, PPI: 1}, ErrField},
		{"RQI in UL", buf, 50, &PDUSession{Type: UL, RQI: true}, ErrField},
		{"PPP in UL", buf, 50, &PDUSession{Type: UL, PPP: true}, ErrField},
		{"reserved PDU type", buf, 50, &PDUSession{Type: 2}, ErrField},
		{"payload over 65535", make([]byte, 70000), 16, &PDUSession{Type: UL}, ErrLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PrependGPDU(tc.buf, tc.off, 1, tc.psc); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
	// The largest payload that fits.
	big := make([]byte, 16+0xffff-8)
	if _, err := PrependGPDU(big, 16, 1, &PDUSession{Type: UL}); err != nil {
		t.Fatalf("largest G-PDU: %v", err)
	}
}

func TestSetTEID(t *testing.T) {
	b := hx(t, "34ff000c 00000001 00000085 01100900 deadbeef")
	if err := SetTEID(b, 0xcafef00d); err != nil {
		t.Fatal(err)
	}
	var h Header
	if _, err := h.Decode(b); err != nil || h.TEID != 0xcafef00d {
		t.Fatalf("TEID %#x, %v", h.TEID, err)
	}
	if err := SetTEID(b[:7], 1); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
}

// The G-PDU fast path allocates nothing (a property, not a timing).
func TestCodecDoesNotAllocate(t *testing.T) {
	g := hx(t, "34ff0010 00000001 00000040 01086885 01100900 deadbeef")
	bad := hx(t, "34ff000c 00000001 00000081 01000000 deadbeef")
	buf := make([]byte, 64+20)
	psc := &PDUSession{Type: DL, QFI: 5, RQI: true}
	var h Header
	var sink error
	n := testing.AllocsPerRun(100, func() {
		if _, err := h.Decode(g); err != nil {
			t.Fatal(err)
		}
		_, sink = h.Decode(bad) // an error value does not allocate either
		if _, err := PrependGPDU(buf, 64, 7, psc); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per decode+encode", n)
	}
	if sink != ErrUnknownExtension {
		t.Fatal(sink)
	}
}

func TestPDUTypeString(t *testing.T) {
	for _, c := range []struct {
		t    PDUType
		want string
	}{{DL, "DL"}, {UL, "UL"}, {5, "PDUType(5)"}} {
		if got := c.t.String(); got != c.want {
			t.Errorf("%d: %q", c.t, got)
		}
	}
}

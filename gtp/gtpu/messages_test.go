package gtpu

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// The signalling messages octet by octet (TS 29.281 5.1, 7.2, 7.3, 8).
func TestSignallingMessages(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	build := func(b []byte, err error) func() ([]byte, error) { return func() ([]byte, error) { return b, err } }
	cases := []struct {
		name string
		msg  func() ([]byte, error)
		want string
		hdr  Header
		ies  IEs
	}{
		{
			// 7.2.1: S=1, TEID 0, no IEs.
			name: "Echo Request",
			msg:  build(EchoRequest(42)),
			want: "32010004 00000000 002a0000",
			hdr:  Header{Flags: 0x32, Type: MsgEchoRequest, Length: 4, Seq: 42},
		},
		{
			// 7.2.2: Recovery IE (type 14) with restart counter 0 (8.2).
			name: "Echo Response",
			msg:  build(EchoResponse(42)),
			want: "32020006 00000000 002a0000 0e00",
			hdr:  Header{Flags: 0x32, Type: MsgEchoResponse, Length: 6, Seq: 42},
			ies:  IEs{HasRecovery: true},
		},
		{
			// 7.3.1: TEID Data I (type 16), GTP-U Peer Address (type 133);
			// 5.2.2.1: UDP Port extension header with the G-PDU's source port.
			name: "Error Indication with UDP Port",
			msg:  build(ErrorIndication(0x11223344, v4, 2152)),
			want: "361a0014 00000000 00000040 01086800 1011223344 8500040a000001",
			hdr:  Header{Flags: 0x36, Type: MsgErrorIndication, Length: 20, HasUDPPort: true, UDPPort: 2152},
			ies:  IEs{HasTEIDDataI: true, TEIDDataI: 0x11223344, PeerAddress: v4},
		},
		{
			name: "Error Indication, IPv6 peer, no port",
			msg:  build(ErrorIndication(7, v6, 0)),
			want: "321a001c 00000000 00000000 1000000007 85001020010db8000000000000000000000001",
			hdr:  Header{Flags: 0x32, Type: MsgErrorIndication, Length: 28},
			ies:  IEs{HasTEIDDataI: true, TEIDDataI: 7, PeerAddress: v6},
		},
		{
			// 7.3.2: the tunnel's TEID, no IEs.
			name: "End Marker",
			msg:  build(EndMarker(5, nil)),
			want: "30fe0000 00000005",
			hdr:  Header{Flags: 0x30, Type: MsgEndMarker, TEID: 5},
		},
		{
			name: "End Marker with DL PDU Session Container",
			msg:  build(EndMarker(5, &PDUSession{Type: DL, QFI: 9})),
			want: "34fe0008 00000005 00000085 01000900",
			hdr:  Header{Flags: 0x34, Type: MsgEndMarker, Length: 8, TEID: 5, HasPDUSession: true, PDUSession: PDUSession{Type: DL, QFI: 9}},
		},
		{
			// 7.2.3: Extension Header Type List (8.5, one-octet length).
			name: "Supported Extension Headers Notification",
			msg:  build(SupportedExtensionHeadersNotification(3)),
			want: "321f0008 00000000 00030000 8d024085",
			hdr:  Header{Flags: 0x32, Type: MsgSupportedExtensionHeadersNotification, Length: 8, Seq: 3},
			ies:  IEs{ExtHeaderTypes: []byte{ExtUDPPort, ExtPDUSessionContainer}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.msg()
			if err != nil {
				t.Fatal(err)
			}
			if want := hx(t, tc.want); !bytes.Equal(b, want) {
				t.Fatalf("\n got %x\nwant %x", b, want)
			}
			var h Header
			payload, err := h.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.hdr {
				t.Errorf("header\n got %+v\nwant %+v", h, tc.hdr)
			}
			ies, err := ParseIEs(payload)
			if err != nil {
				t.Fatal(err)
			}
			if ies.Recovery != tc.ies.Recovery || ies.HasRecovery != tc.ies.HasRecovery ||
				ies.TEIDDataI != tc.ies.TEIDDataI || ies.HasTEIDDataI != tc.ies.HasTEIDDataI ||
				ies.PeerAddress != tc.ies.PeerAddress || !bytes.Equal(ies.ExtHeaderTypes, tc.ies.ExtHeaderTypes) {
				t.Errorf("IEs\n got %+v\nwant %+v", ies, tc.ies)
			}
		})
	}
}

func TestSignallingErrors(t *testing.T) {
	if _, err := ErrorIndication(1, netip.Addr{}, 0); err == nil {
		t.Error("Error Indication without a peer address")
	}
	if _, err := EndMarker(1, &PDUSession{Type: UL, QFI: 99}); !errors.Is(err, ErrField) {
		t.Errorf("End Marker with QFI 99: %v", err)
	}
}

func TestParseIEs(t *testing.T) {
	cases := []struct {
		name string
		in   string
		err  error
		want IEs
	}{
		{name: "empty", in: ""},
		{name: "private extension skipped", in: "ff0003 000102 0e05", want: IEs{Recovery: 5, HasRecovery: true}},
		{name: "unknown TLV skipped", in: "fe0000 1000000009", want: IEs{TEIDDataI: 9, HasTEIDDataI: true}},
		{name: "IPv4-mapped peer address unmapped", in: "850010 00000000000000000000ffff0a000002",
			want: IEs{PeerAddress: netip.MustParseAddr("10.0.0.2")}},
		{name: "truncated Recovery", in: "0e", err: ErrIE},
		{name: "truncated TEID Data I", in: "10000000", err: ErrIE},
		{name: "truncated TLV header", in: "8500", err: ErrIE},
		{name: "TLV longer than message", in: "850004 0a0000", err: ErrIE},
		{name: "peer address of 5 octets", in: "850005 0a00000101", err: ErrIE},
		{name: "truncated type list", in: "8d03 4085", err: ErrIE},
		{name: "type list without length", in: "8d", err: ErrIE},
		{name: "unknown TV type", in: "0101", err: ErrIE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ies, err := ParseIEs(hx(t, tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (ies.Recovery != tc.want.Recovery || ies.HasRecovery != tc.want.HasRecovery ||
				ies.TEIDDataI != tc.want.TEIDDataI || ies.HasTEIDDataI != tc.want.HasTEIDDataI || ies.PeerAddress != tc.want.PeerAddress) {
				t.Errorf("got %+v, want %+v", ies, tc.want)
			}
		})
	}
}

func TestParseErrorIndication(t *testing.T) {
	teid, peer, err := ParseErrorIndication(hx(t, "1011223344 8500040a000001"))
	if err != nil || teid != 0x11223344 || peer != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("%#x %v %v", teid, peer, err)
	}
	for _, in := range []string{"1011223344", "8500040a000001", ""} {
		if _, _, err := ParseErrorIndication(hx(t, in)); !errors.Is(err, ErrMissingIE) {
			t.Errorf("%q: %v, want ErrMissingIE", in, err)
		}
	}
	if _, _, err := ParseErrorIndication(hx(t, "10112233")); !errors.Is(err, ErrIE) {
		t.Errorf("truncated: %v", err)
	}
}

package plmn

import "testing"

func TestCoding(t *testing.T) {
	tests := []struct {
		mcc, mnc string
		b        [3]byte
	}{
		{"001", "01", [3]byte{0x00, 0xf1, 0x10}},  // test network
		{"208", "93", [3]byte{0x02, 0xf8, 0x39}},  // TS 33.501 C.4 style PLMN 208/93
		{"310", "410", [3]byte{0x13, 0x00, 0x14}}, // 3-digit MNC
		{"274", "012", [3]byte{0x72, 0x24, 0x10}},
	}
	for _, tt := range tests {
		got, err := Encode(tt.mcc, tt.mnc)
		if err != nil || got != tt.b {
			t.Errorf("Encode(%s, %s) = %x, %v; want %x", tt.mcc, tt.mnc, got, err, tt.b)
		}
		mcc, mnc, err := Decode(tt.b[:])
		if err != nil || mcc != tt.mcc || mnc != tt.mnc {
			t.Errorf("Decode(%x) = %s %s %v", tt.b, mcc, mnc, err)
		}
	}
	for _, bad := range [][2]string{{"01", "01"}, {"0a1", "01"}, {"001", "1"}, {"001", "1234"}, {"001", "0x"}} {
		if _, err := Encode(bad[0], bad[1]); err == nil {
			t.Errorf("Encode(%q, %q) accepted", bad[0], bad[1])
		}
	}
	for _, bad := range [][]byte{{0x00, 0xf1}, {0xa0, 0xf1, 0x10}, {0x00, 0xe1, 0x10}, {0x00, 0xf1, 0x1f}} {
		if _, _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%x) accepted", bad)
		}
	}
}

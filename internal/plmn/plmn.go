// Package plmn owns the PLMN identity: an MCC and an MNC, and their 3-octet
// BCD coding used by NAS and NGAP alike (TS 24.008 10.5.1.13, TS 24.501
// 9.11.3.4, TS 38.413 9.3.3.5): MCC digit 2|1, MNC digit 3|MCC digit 3,
// MNC digit 2|1, where MNC digit 3 is 1111 for a two-digit MNC.
package plmn

import "fmt"

// Check reports whether mcc is 3 digits and mnc 2 or 3.
func Check(mcc, mnc string) error {
	if len(mcc) != 3 || !digits(mcc) {
		return fmt.Errorf("mcc %q: want 3 digits", mcc)
	}
	if (len(mnc) != 2 && len(mnc) != 3) || !digits(mnc) {
		return fmt.Errorf("mnc %q: want 2 or 3 digits", mnc)
	}
	return nil
}

// Encode returns the 3-octet PLMN identity of a checked MCC and MNC.
func Encode(mcc, mnc string) ([3]byte, error) {
	if err := Check(mcc, mnc); err != nil {
		return [3]byte{}, err
	}
	return [3]byte(Append(nil, mcc, mnc)), nil
}

// Append appends the PLMN identity of mcc and mnc to b. The digits must have
// been checked (Check); Append does not look at them again.
func Append(b []byte, mcc, mnc string) []byte {
	d := func(s string, i int) byte { return s[i] - '0' }
	mnc3 := byte(0xf)
	if len(mnc) == 3 {
		mnc3 = d(mnc, 2)
	}
	return append(b, d(mcc, 1)<<4|d(mcc, 0), mnc3<<4|d(mcc, 2), d(mnc, 1)<<4|d(mnc, 0))
}

// Decode reads a 3-octet PLMN identity; a nibble that is not a digit (but
// the 1111 filler of a two-digit MNC) is an error.
func Decode(b []byte) (mcc, mnc string, err error) {
	if len(b) != 3 {
		return "", "", fmt.Errorf("PLMN identity of %d octets, want 3", len(b))
	}
	n := [6]byte{b[0] & 0xf, b[0] >> 4, b[1] & 0xf, b[2] & 0xf, b[2] >> 4, b[1] >> 4}
	for i, v := range n {
		if v > 9 && !(i == 5 && v == 0xf) {
			return "", "", fmt.Errorf("PLMN identity %x: nibble %x is not a digit", b, v)
		}
	}
	mcc = string([]byte{'0' + n[0], '0' + n[1], '0' + n[2]})
	mnc = string([]byte{'0' + n[3], '0' + n[4]})
	if n[5] != 0xf {
		mnc += string('0' + n[5])
	}
	return mcc, mnc, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

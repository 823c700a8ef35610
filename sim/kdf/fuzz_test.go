package kdf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"strings"
	"testing"
)

// FuzzHMACSHA256 compares the stack HMAC with crypto/hmac for any key and
// message, split anywhere into two parts.
func FuzzHMACSHA256(f *testing.F) {
	f.Add([]byte("key"), []byte("The quick brown fox"), uint16(3))
	f.Add(bytes.Repeat([]byte{1}, 65), bytes.Repeat([]byte{2}, 400), uint16(300))
	f.Add([]byte{}, []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, key, msg []byte, split uint16) {
		k := int(split) % (len(msg) + 1)
		got := hmacSHA256(key, msg[:k], msg[k:])
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if want := m.Sum(nil); !bytes.Equal(got[:], want) {
			t.Fatalf("hmacSHA256 = %x, want %x", got, want)
		}
	})
}

// FuzzDerive compares Derive with the KDF written on crypto/hmac.
func FuzzDerive(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), byte(0x6B), []byte("5G:mnc001.mcc001.3gppnetwork.org"), []byte{1, 2}, []byte{})
	f.Add([]byte{}, byte(0), []byte{}, []byte{}, bytes.Repeat([]byte{9}, 300))
	f.Fuzz(func(t *testing.T, key []byte, fc byte, p0, p1, p2 []byte) {
		got, err := Derive(key, fc, p0, p1, p2)
		if err != nil {
			t.Fatalf("Derive: %v", err)
		}
		if want := refKDF(key, fc, p0, p1, p2); !bytes.Equal(got[:], want) {
			t.Fatalf("Derive = %x, want %x", got, want)
		}
	})
}

// FuzzAnnexAInputs feeds wire-supplied values (SNN, RES, SUPI, ABBA) to the
// Annex A functions: they must reject exactly the malformed ones, never
// panic, and otherwise match the reference KDF.
func FuzzAnnexAInputs(f *testing.F) {
	f.Add("5G:mnc001.mcc001.3gppnetwork.org", []byte{1, 2, 3, 4, 5, 6, 7, 8}, "imsi-001010000000001", []byte{0, 0})
	f.Add("", []byte{}, "", []byte{})
	f.Add("5G:", []byte{1, 2, 3}, "nai-a@b", []byte{0})
	f.Add("5G:x", make([]byte, 17), "0010100000", make([]byte, 300))
	f.Fuzz(func(t *testing.T, snn string, res []byte, supi string, abba []byte) {
		var ck, ik, rand [16]byte
		var key [32]byte
		ck[0], ik[0], rand[0], key[0] = 1, 2, 3, 4

		snnOK := strings.HasPrefix(snn, "5G:") && len(snn) > 3 && len(snn) <= maxParam
		resOK := len(res) >= 4 && len(res) <= 16
		got, err := RESStar(ck, ik, snn, rand, res)
		if (err == nil) != (snnOK && resOK) {
			t.Fatalf("RESStar(%q, RES of %d): err = %v", snn, len(res), err)
		}
		if err == nil {
			if want := refKDF(cat(ck[:], ik[:]), 0x6B, []byte(snn), rand[:], res)[16:]; !bytes.Equal(got[:], want) {
				t.Fatalf("RESStar = %x, want %x", got, want)
			}
		}

		var p0 string
		switch {
		case strings.HasPrefix(supi, "imsi-") && isIMSI(supi[5:]):
			p0 = supi[5:]
		case strings.HasPrefix(supi, "nai-") && len(supi) > 4 && len(supi)-4 <= maxParam:
			p0 = supi[4:]
		case isIMSI(supi):
			p0 = supi
		}
		abbaOK := len(abba) >= 2 && len(abba) <= 255
		kamf, err := KAMF(key, supi, abba)
		if (err == nil) != (p0 != "" && abbaOK) {
			t.Fatalf("KAMF(%q, ABBA of %d): err = %v", supi, len(abba), err)
		}
		if err == nil {
			if want := refKDF(key[:], 0x6D, []byte(p0), abba); !bytes.Equal(kamf[:], want) {
				t.Fatalf("KAMF = %x, want %x", kamf, want)
			}
		}
	})
}

// FuzzEAPIdentity checks the EAP key derivations on any identity (it comes
// off the wire in AT_IDENTITY or EAP-Response/Identity) against the
// references, past the stack buffers too.
func FuzzEAPIdentity(f *testing.F) {
	f.Add([]byte("0555444333222111"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte("a"), 600))
	f.Fuzz(func(t *testing.T, id []byte) {
		var ck, ik [16]byte
		ck[3], ik[5] = 0x33, 0x55
		k := EAPAKAPrime(ck, ik, id)
		mk := refPRFPrime(cat(ik[:], ck[:]), cat([]byte("EAP-AKA'"), id), 208)
		if !bytes.Equal(cat(k.KEncr[:], k.KAut[:], k.KRe[:], k.MSK[:], k.EMSK[:]), mk) {
			t.Fatal("EAPAKAPrime differs from the reference PRF'")
		}
		if got, want := EAPAKAMasterKey(id, ck, ik), sha1.Sum(cat(id, ik[:], ck[:])); got != want {
			t.Fatalf("EAPAKAMasterKey = %x, want %x", got, want)
		}
	})
}

// FuzzSHA1Block compares the SHA-1 compression function with crypto/sha1 on
// every one-block message.
func FuzzSHA1Block(f *testing.F) {
	f.Add([]byte("abc"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 55 {
			msg = msg[:55]
		}
		if got, want := sha1OneBlock(msg), sha1.Sum(msg); got != want {
			t.Fatalf("sha1Block(%x) = %x, want %x", msg, got, want)
		}
	})
}

// FuzzServingNetworkName: any MCC/MNC either fails or gives a name the
// SNN-taking functions accept, of the TS 24.501 9.12.1 shape.
func FuzzServingNetworkName(f *testing.F) {
	f.Add("001", "01")
	f.Add("208", "093")
	f.Add("", "\x00")
	f.Fuzz(func(t *testing.T, mcc, mnc string) {
		snn, err := ServingNetworkName(mcc, mnc)
		if err != nil {
			return
		}
		if checkSNN(snn) != nil || len(snn) != len("5G:mnc001.mcc001.3gppnetwork.org") ||
			!strings.HasSuffix(snn, ".mcc"+mcc+".3gppnetwork.org") || !strings.HasSuffix(snn[:9], mnc) {
			t.Fatalf("ServingNetworkName(%q, %q) = %q", mcc, mnc, snn)
		}
	})
}

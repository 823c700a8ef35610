package kdf

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

// eapCase is one case of eap_aka_prime.json; each kind fills some fields.
type eapCase struct {
	Kind        string   `json:"kind"`
	Name        string   `json:"name"`
	Identity    string   `json:"identity"`
	IdentityHex hexBytes `json:"identity_hex"`
	NetworkName string   `json:"network_name"`
	AUTN        hexBytes `json:"autn"`
	SQNXorAK    hexBytes `json:"sqn_xor_ak"`
	IK          hexBytes `json:"ik"`
	CK          hexBytes `json:"ck"`
	CKPrime     hexBytes `json:"ck_prime"`
	IKPrime     hexBytes `json:"ik_prime"`
	KEncr       hexBytes `json:"k_encr"`
	KAut        hexBytes `json:"k_aut"`
	KRe         hexBytes `json:"k_re"`
	MSK         hexBytes `json:"msk"`
	EMSK        hexBytes `json:"emsk"`

	// eap_sim_rfc4186
	Kc              []hexBytes `json:"kc"`
	NonceMT         hexBytes   `json:"nonce_mt"`
	VersionList     hexBytes   `json:"version_list"`
	SelectedVersion hexBytes   `json:"selected_version"`
	MK              hexBytes   `json:"mk"`
	Counter         *int       `json:"counter"`
	NonceS          hexBytes   `json:"nonce_s"`

	// fips186_2_prf
	XKEY   hexBytes `json:"xkey"`
	Output hexBytes `json:"output"`
}

func TestEAPVectors(t *testing.T) {
	cases := vectors.Load[eapCase](t, "eap_aka_prime.json")
	ran := map[string]int{}
	for _, c := range cases {
		t.Run(c.Kind+"/"+c.Name, func(t *testing.T) {
			expect := func(what string, got, want []byte) {
				t.Helper()
				if !bytes.Equal(got, want) {
					t.Errorf("%s = %x, want %x", what, got, want)
				}
			}
			if c.IdentityHex != nil && string(c.IdentityHex) != c.Identity {
				t.Fatalf("identity %q and identity_hex %x differ", c.Identity, c.IdentityHex)
			}
			switch c.Kind {
			case "eap_aka_prime_rfc5448":
				// SQN xor AK is the first 6 octets of AUTN (TS 33.102 6.3.3).
				expect("SQN xor AK", c.AUTN[:6], c.SQNXorAK)
				ckp, ikp, err := CKIKPrime([16]byte(c.CK), [16]byte(c.IK), c.NetworkName, [6]byte(c.AUTN[:6]))
				if err != nil {
					t.Fatal(err)
				}
				expect("CK'", ckp[:], c.CKPrime)
				expect("IK'", ikp[:], c.IKPrime)
				k := EAPAKAPrime(ckp, ikp, []byte(c.Identity))
				expect("K_encr", k.KEncr[:], c.KEncr)
				expect("K_aut", k.KAut[:], c.KAut)
				expect("K_re", k.KRe[:], c.KRe)
				expect("MSK", k.MSK[:], c.MSK)
				expect("EMSK", k.EMSK[:], c.EMSK)
				kausf := k.KAUSF()
				expect("KAUSF (EMSK[0:32])", kausf[:], c.EMSK[:32])
			case "eap_aka_rfc4187":
				mk := EAPAKAMasterKey([]byte(c.Identity), [16]byte(c.CK), [16]byte(c.IK))
				// RFC 4187 7: MK = SHA1(Identity|IK|CK), written out here.
				want := sha1.Sum(cat([]byte(c.Identity), c.IK, c.CK))
				expect("MK", mk[:], want[:])
				k := EAPKeysFromMK(mk)
				expect("K_encr", k.KEncr[:], c.KEncr)
				expect("K_aut", k.KAut[:], c.KAut)
				expect("MSK", k.MSK[:], c.MSK)
				expect("EMSK", k.EMSK[:], c.EMSK)
			case "eap_sim_rfc4186":
				if c.Counter != nil { // fast re-authentication
					msk, emsk := EAPReauthKeys([]byte(c.Identity), uint16(*c.Counter), [16]byte(c.NonceS), [20]byte(c.MK))
					expect("MSK", msk[:], c.MSK)
					expect("EMSK", emsk[:], c.EMSK)
					k := EAPKeysFromMK([20]byte(c.MK))
					expect("K_encr", k.KEncr[:], c.KEncr)
					expect("K_aut", k.KAut[:], c.KAut)
					break
				}
				kc := make([][8]byte, len(c.Kc))
				for i := range c.Kc {
					kc[i] = [8]byte(c.Kc[i])
				}
				mk, err := EAPSIMMasterKey([]byte(c.Identity), kc, [16]byte(c.NonceMT), c.VersionList, binary.BigEndian.Uint16(c.SelectedVersion))
				if err != nil {
					t.Fatal(err)
				}
				expect("MK", mk[:], c.MK)
				k := EAPKeysFromMK(mk)
				expect("K_encr", k.KEncr[:], c.KEncr)
				expect("K_aut", k.KAut[:], c.KAut)
				expect("MSK", k.MSK[:], c.MSK)
				expect("EMSK", k.EMSK[:], c.EMSK)
			case "fips186_2_prf":
				out := make([]byte, len(c.Output))
				fips186PRF([20]byte(c.XKEY), out)
				expect("PRF output", out, c.Output)
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
			if !t.Failed() {
				ran[c.Kind]++
			}
		})
	}
	for _, k := range []string{"eap_aka_prime_rfc5448", "eap_aka_rfc4187", "eap_sim_rfc4186", "fips186_2_prf"} {
		if ran[k] == 0 {
			t.Errorf("no passing case of kind %s", k)
		}
	}
}

// refPRFPrime is RFC 9048 3.4.1 written plainly on crypto/hmac.
func refPRFPrime(key, s []byte, n int) []byte {
	var out, t []byte
	for i := 1; len(out) < n; i++ {
		m := hmac.New(sha256.New, key)
		m.Write(t)
		m.Write(s)
		m.Write([]byte{byte(i)})
		t = m.Sum(nil)
		out = append(out, t...)
	}
	return out[:n]
}

func TestPRFPrime(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, n := range []int{0, 1, 31, 32, 33, 208, 255 * 32} {
		for _, s := range [][]byte{nil, []byte("EAP-AKA'"), bytes.Repeat([]byte{0x5a}, 700)} {
			out := make([]byte, n)
			if err := PRFPrime(key, s, out); err != nil {
				t.Fatalf("PRFPrime(%d octets): %v", n, err)
			}
			if want := refPRFPrime(key, s, n); !bytes.Equal(out, want) {
				t.Fatalf("PRFPrime(%d octets, S of %d) differs from the reference", n, len(s))
			}
		}
	}
	if err := PRFPrime(key, nil, make([]byte, 255*32+1)); err == nil || !strings.HasPrefix(err.Error(), "kdf: PRF'") {
		t.Fatalf("PRFPrime past 255 blocks: err = %v", err)
	}
}

// TestEAPAKAPrimeLongIdentity checks identities longer than the stack
// buffers (a NAI can be long) against the reference PRF'.
func TestEAPAKAPrimeLongIdentity(t *testing.T) {
	var ckp, ikp [16]byte
	for i := range ckp {
		ckp[i], ikp[i] = byte(i), byte(100+i)
	}
	id := []byte("6" + strings.Repeat("0", 400) + "@nai.5gc.mnc093.mcc208.3gppnetwork.org")
	k := EAPAKAPrime(ckp, ikp, id)
	mk := refPRFPrime(cat(ikp[:], ckp[:]), cat([]byte("EAP-AKA'"), id), 208)
	if got := cat(k.KEncr[:], k.KAut[:], k.KRe[:], k.MSK[:], k.EMSK[:]); !bytes.Equal(got, mk) {
		t.Fatalf("keys = %x\nwant %x", got, mk)
	}
}

// TestEAPAKAPrimeReauth: RFC 9048 publishes no fast re-authentication
// vector. Inputs: K_re of RFC 5448 case 1, its identity, counter 1 and
// NONCE_S 0123456789abcdeffedcba9876543210. The MSK/EMSK were computed by
// this implementation and cross-checked with a separate one-off Python
// script (hmac, hashlib) that is not in the repository.
func TestEAPAKAPrimeReauth(t *testing.T) {
	kre := [32]byte(unhex(t, "cf83aa8bc7e0aced892acc98e76a9b2095b558c7795c7094715cb3393aa7d17a"))
	nonce := [16]byte(unhex(t, "0123456789abcdeffedcba9876543210"))
	msk, emsk := EAPAKAPrimeReauth(kre, []byte("0555444333222111"), 1, nonce)
	const wantMSK = "6b2c00e5b233e1c4455ae349ecf48fa232977de408cf90153070c5eb1d9eb42c0ad15c866fc8d293d5cd4f6a4ea29f7f8c45438131b2c77b859db078e9d7d081"
	const wantEMSK = "972c5bd8dd89335afc3fc08bfbde739669be08dec33372bde84635adb109d515b6a5b2547b6304a1ecf47c2964f3777ad9d9b677b244c8292435132330aed497"
	if hex.EncodeToString(msk[:]) != wantMSK || hex.EncodeToString(emsk[:]) != wantEMSK {
		t.Fatalf("MSK %x\nEMSK %x", msk, emsk)
	}
	// The counter is part of the input: the next re-authentication differs.
	if msk2, _ := EAPAKAPrimeReauth(kre, []byte("0555444333222111"), 2, nonce); msk2 == msk {
		t.Fatal("counter 1 and 2 gave the same MSK")
	}
}

func TestEAPSIMMasterKeyErrors(t *testing.T) {
	kc := [][8]byte{{1}, {2}, {3}}
	var nonce [16]byte
	tests := []struct {
		name string
		kc   [][8]byte
		vl   []byte
		want string
	}{
		{"one Kc", kc[:1], []byte{0, 1}, "1 Kc values"},
		{"no Kc", nil, []byte{0, 1}, "0 Kc values"},
		{"four Kc", append(kc, [8]byte{4}), []byte{0, 1}, "4 Kc values"},
		{"empty version list", kc, nil, "version list is 0 octets"},
		{"odd version list", kc, []byte{0, 1, 0}, "version list is 3 octets"},
	}
	for _, tt := range tests {
		_, err := EAPSIMMasterKey([]byte("1244070100000001@eapsim.foo"), tt.kc, nonce, tt.vl, 1)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "kdf: EAP-SIM MK") {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Two Kc values (n = 2) are valid and give a different MK than three.
	a, errA := EAPSIMMasterKey(nil, kc[:2], nonce, []byte{0, 1}, 1)
	b, errB := EAPSIMMasterKey(nil, kc, nonce, []byte{0, 1}, 1)
	if errA != nil || errB != nil || a == b {
		t.Fatalf("n=2: %x %v; n=3: %x %v", a, errA, b, errB)
	}
}

// TestSHA1Block checks the compression function against crypto/sha1: for a
// message of at most 55 octets, SHA-1 is one compression of the padded block.
func TestSHA1Block(t *testing.T) {
	for _, msg := range []string{"", "abc", strings.Repeat("x", 55)} {
		if got, want := sha1OneBlock([]byte(msg)), sha1.Sum([]byte(msg)); got != want {
			t.Errorf("SHA-1 of %q via sha1Block = %x, want %x", msg, got, want)
		}
	}
}

// sha1OneBlock is SHA-1 of msg (len <= 55) through sha1Block, with the
// FIPS 180-4 5.1.1 padding done by hand.
func sha1OneBlock(msg []byte) [20]byte {
	var block [64]byte
	copy(block[:], msg)
	block[len(msg)] = 0x80
	binary.BigEndian.PutUint64(block[56:], uint64(len(msg))*8)
	h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
	sha1Block(&h, &block)
	var out [20]byte
	for i, v := range h {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
	return out
}

// TestFIPS186PRFCarry checks the XKEY update (1 + XKEY + w) mod 2^160 where
// it wraps: XKEY = 2^160 - 1 must give the same second block as computing
// it by hand.
func TestFIPS186PRFCarry(t *testing.T) {
	var xkey [20]byte
	for i := range xkey {
		xkey[i] = 0xff
	}
	out := make([]byte, 40)
	fips186PRF(xkey, out)
	// By hand: w0 = G(t, XKEY); XKEY' = XKEY + 1 + w0 = w0 (mod 2^160).
	w0 := gRef(xkey)
	w1 := gRef(w0)
	if !bytes.Equal(out, cat(w0[:], w1[:])) {
		t.Fatalf("PRF = %x, want %x%x", out, w0, w1)
	}
	// A truncated output is a prefix of the full one.
	short := make([]byte, 7)
	fips186PRF(xkey, short)
	if !bytes.Equal(short, out[:7]) {
		t.Fatalf("truncated PRF = %x, want %x", short, out[:7])
	}
}

func gRef(c [20]byte) [20]byte {
	var block [64]byte
	copy(block[:], c[:])
	h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
	sha1Block(&h, &block)
	var w [20]byte
	for i, v := range h {
		binary.BigEndian.PutUint32(w[4*i:], v)
	}
	return w
}

package kdf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/simgate/simgate/internal/vectors"
)

func TestServingNetworkName(t *testing.T) {
	tests := []struct {
		mcc, mnc, want, err string
	}{
		{"001", "01", "5G:mnc001.mcc001.3gppnetwork.org", ""},
		{"208", "93", "5G:mnc093.mcc208.3gppnetwork.org", ""},
		{"310", "410", "5G:mnc410.mcc310.3gppnetwork.org", ""},
		{"440", "010", "5G:mnc010.mcc440.3gppnetwork.org", ""},
		{"01", "01", "", "MCC"},
		{"0011", "01", "", "MCC"},
		{"00a", "01", "", "MCC"},
		{"001", "1", "", "MNC"},
		{"001", "0001", "", "MNC"},
		{"001", "0x", "", "MNC"},
		{"001", "", "", "MNC"},
		{"", "", "", "MCC"},
	}
	for _, tt := range tests {
		got, err := ServingNetworkName(tt.mcc, tt.mnc)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ServingNetworkName(%q, %q) = %q, %v; want an error about the %s", tt.mcc, tt.mnc, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ServingNetworkName(%q, %q) = %q, %v; want %q", tt.mcc, tt.mnc, got, err, tt.want)
		}
	}
}

// TestAnnexAVectors runs the TS 33.501 Annex A functions on the kdf_5g.json
// cases made for them.
func TestAnnexAVectors(t *testing.T) {
	cases := vectors.Load[kdf5GCase](t, "kdf_5g.json")
	n := 0
	for _, c := range cases {
		t.Run(c.Kind+"/"+c.Name, func(t *testing.T) {
			switch c.Kind {
			case "res_star_xres_star":
				// The file's SNN is what ServingNetworkName builds for MCC 001, MNC 01.
				snn, err := ServingNetworkName("001", "01")
				if err != nil || snn != c.SNN {
					t.Fatalf("ServingNetworkName(001, 01) = %q, %v; the vector used %q", snn, err, c.SNN)
				}
				got, err := RESStar([16]byte(c.CK), [16]byte(c.IK), snn, [16]byte(c.RAND), c.RES)
				if err != nil || !bytes.Equal(got[:], c.RESStar) {
					t.Fatalf("RESStar = %x, %v; want %x", got, err, c.RESStar)
				}
			case "hxres_star":
				got := HRESStar([16]byte(c.RAND), [16]byte(c.XRESStar))
				if !bytes.Equal(got[:], c.HXRES) {
					t.Fatalf("HRESStar = %x, want %x", got, c.HXRES)
				}
			case "kausf_kseaf":
				// Flagged case: a 2-digit-MNC SNN, still an exact answer for that string.
				kausf, err := KAUSF([16]byte(c.CK), [16]byte(c.IK), c.SNNAsUsed, [6]byte(c.SQNXorAK))
				if err != nil || !bytes.Equal(kausf[:], c.KAUSF) {
					t.Fatalf("KAUSF = %x, %v; want %x", kausf, err, c.KAUSF)
				}
				kseaf, err := KSEAF(kausf, c.SNNAsUsed)
				if err != nil || !bytes.Equal(kseaf[:], c.KSEAF) {
					t.Fatalf("KSEAF = %x, %v; want %x", kseaf, err, c.KSEAF)
				}
			case "algorithm_key_derivation_a8":
				got, err := AlgorithmKey([32]byte(c.Key), AlgorithmType(c.AlgType), byte(c.AlgID))
				if err != nil || !bytes.Equal(got[:], c.Key128) {
					t.Fatalf("AlgorithmKey = %x, %v; want %x", got, err, c.Key128)
				}
			case "ck_ik_prime":
				ckp, ikp, err := CKIKPrime([16]byte(c.KeyCKIK[:16]), [16]byte(c.KeyCKIK[16:]), c.AccessNet, [6]byte(c.P1SQNXorAK))
				if err != nil || !bytes.Equal(cat(ckp[:], ikp[:]), c.CKIKPrimeKA) {
					t.Fatalf("CKIKPrime = %x %x, %v; want %x", ckp, ikp, err, c.CKIKPrimeKA)
				}
			default:
				return // generic-KDF-only kinds: TestDeriveVectors
			}
			n++
		})
	}
	if n < 9 {
		t.Fatalf("only %d Annex A cases ran, want at least 9", n)
	}
}

// TestAnnexAEncoding checks each function against the KDF written out
// plainly on crypto/hmac with its parameters encoded by hand, including
// the ones no published vector covers (KAMF, NAS keys, KgNB).
func TestAnnexAEncoding(t *testing.T) {
	var ck, ik, rand [16]byte
	var key [32]byte
	for i := range ck {
		ck[i], ik[i], rand[i] = byte(i), byte(0x80+i), byte(0x40+i)
	}
	for i := range key {
		key[i] = byte(0xf0 - i)
	}
	sqnXorAK := [6]byte{1, 2, 3, 4, 5, 6}
	const snn = "5G:mnc093.mcc208.3gppnetwork.org"
	res := []byte{9, 8, 7, 6, 5, 4, 3, 2}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a32 := func(k [32]byte, err error) []byte { return must(k[:], err) }
	a16 := func(k [16]byte, err error) []byte { return must(k[:], err) }
	ckik := cat(ck[:], ik[:])
	tests := []struct {
		name      string
		got, want []byte
	}{
		{"KAUSF", a32(KAUSF(ck, ik, snn, sqnXorAK)), refKDF(ckik, 0x6A, []byte(snn), sqnXorAK[:])},
		{"RES* (8-octet RES)", a16(RESStar(ck, ik, snn, rand, res)), refKDF(ckik, 0x6B, []byte(snn), rand[:], res)[16:]},
		{"RES* (16-octet RES)", a16(RESStar(ck, ik, snn, rand, cat(res, res))), refKDF(ckik, 0x6B, []byte(snn), rand[:], cat(res, res))[16:]},
		{"RES* (4-octet RES)", a16(RESStar(ck, ik, snn, rand, res[:4])), refKDF(ckik, 0x6B, []byte(snn), rand[:], res[:4])[16:]},
		{"KSEAF", a32(KSEAF(key, snn)), refKDF(key[:], 0x6C, []byte(snn))},
		{"KAMF imsi-", a32(KAMF(key, "imsi-208930000000001", []byte{0, 0})), refKDF(key[:], 0x6D, []byte("208930000000001"), []byte{0, 0})},
		{"KAMF bare IMSI", a32(KAMF(key, "20893000000001", []byte{0, 0})), refKDF(key[:], 0x6D, []byte("20893000000001"), []byte{0, 0})},
		{"KAMF nai-", a32(KAMF(key, "nai-user@example.org", []byte{0, 0})), refKDF(key[:], 0x6D, []byte("user@example.org"), []byte{0, 0})},
		{"KAMF long ABBA", a32(KAMF(key, "imsi-001010000000001", []byte{0, 1, 2})), refKDF(key[:], 0x6D, []byte("001010000000001"), []byte{0, 1, 2})},
		{"KNASenc 128-NEA2", a16(AlgorithmKey(key, NASEnc, 2)), refKDF(key[:], 0x69, []byte{1}, []byte{2})[16:]},
		{"KNASint 128-NIA1", a16(AlgorithmKey(key, NASInt, 1)), refKDF(key[:], 0x69, []byte{2}, []byte{1})[16:]},
		{"KUPint NIA3", a16(AlgorithmKey(key, UPInt, 3)), refKDF(key[:], 0x69, []byte{6}, []byte{3})[16:]},
		{"KgNB", a32(KgNB(key, 0x01020304, Access3GPP)), refKDF(key[:], 0x6E, []byte{1, 2, 3, 4}, []byte{1})},
		{"KN3IWF", a32(KgNB(key, 0xfffffffe, AccessNon3GPP)), refKDF(key[:], 0x6E, []byte{0xff, 0xff, 0xff, 0xfe}, []byte{2})},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, tt.want)
		}
		if prev, ok := seen[string(tt.got)]; ok {
			t.Errorf("%s and %s gave the same key", prev, tt.name)
		}
		seen[string(tt.got)] = tt.name
	}
	ckp, ikp, err := CKIKPrime(ck, ik, snn, sqnXorAK)
	if want := refKDF(ckik, 0x20, []byte(snn), sqnXorAK[:]); err != nil || !bytes.Equal(cat(ckp[:], ikp[:]), want) {
		t.Errorf("CKIKPrime = %x %x, %v; want %x", ckp, ikp, err, want)
	}
}

func TestAnnexAErrors(t *testing.T) {
	var k16 [16]byte
	var k32 [32]byte
	var sxa [6]byte
	const snn = "5G:mnc001.mcc001.3gppnetwork.org"
	second := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"KAUSF empty SNN", second(KAUSF(k16, k16, "", sxa)), "KAUSF: serving network name"},
		{"KAUSF bare PLMN", second(KAUSF(k16, k16, "mnc001.mcc001.3gppnetwork.org", sxa)), "KAUSF: serving network name"},
		{"KAUSF prefix only", second(KAUSF(k16, k16, "5G:", sxa)), "KAUSF: serving network name"},
		{"KAUSF SNN too long", second(KAUSF(k16, k16, "5G:"+strings.Repeat("x", maxParam), sxa)), "longer than"},
		{"RES* no SNN", second(RESStar(k16, k16, "", k16, make([]byte, 8))), "RES*: serving network name"},
		{"RES* RES of 3", second(RESStar(k16, k16, snn, k16, make([]byte, 3))), "RES is 3 octets"},
		{"RES* RES of 17", second(RESStar(k16, k16, snn, k16, make([]byte, 17))), "RES is 17 octets"},
		{"RES* nil RES", second(RESStar(k16, k16, snn, k16, nil)), "RES is 0 octets"},
		{"KSEAF bad SNN", second(KSEAF(k32, "5g:mnc001.mcc001.3gppnetwork.org")), "KSEAF: serving network name"},
		{"KAMF empty SUPI", second(KAMF(k32, "", []byte{0, 0})), "KAMF: SUPI"},
		{"KAMF short IMSI", second(KAMF(k32, "imsi-00101", []byte{0, 0})), "6 to 15 digits"},
		{"KAMF long IMSI", second(KAMF(k32, "imsi-0010100000000001", []byte{0, 0})), "6 to 15 digits"},
		{"KAMF IMSI with letter", second(KAMF(k32, "imsi-00101000000000a", []byte{0, 0})), "6 to 15 digits"},
		{"KAMF empty NAI", second(KAMF(k32, "nai-", []byte{0, 0})), "NAI is 0 octets"},
		{"KAMF SUCI", second(KAMF(k32, "suci-0-001-01-0-0-0-0000000001", []byte{0, 0})), "KAMF: SUPI"},
		{"KAMF ABBA of 1", second(KAMF(k32, "imsi-001010000000001", []byte{0})), "ABBA is 1 octets"},
		{"KAMF no ABBA", second(KAMF(k32, "imsi-001010000000001", nil)), "ABBA is 0 octets"},
		{"KAMF ABBA of 256", second(KAMF(k32, "imsi-001010000000001", make([]byte, 256))), "ABBA is 256 octets"},
		{"algorithm type 0", second(AlgorithmKey(k32, 0, 1)), "type distinguisher 0x00"},
		{"algorithm type 7", second(AlgorithmKey(k32, 7, 1)), "type distinguisher 0x07"},
		{"algorithm identity 16", second(AlgorithmKey(k32, NASInt, 16)), "identity 16"},
		{"KgNB access 0", second(KgNB(k32, 0, 0)), "access type distinguisher 0x00"},
		{"KgNB access 3", second(KgNB(k32, 0, 3)), "access type distinguisher 0x03"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) || !strings.HasPrefix(tt.err.Error(), "kdf: ") {
			t.Errorf("%s: err = %v, want a kdf: error containing %q", tt.name, tt.err, tt.want)
		}
	}
	if _, _, err := CKIKPrime(k16, k16, "", sxa); err == nil {
		t.Error("CKIKPrime with an empty access network identity: no error")
	}
}

// aka5GInput is the MILENAGE output for one authentication, as the
// res_star_xres_star cases of kdf_5g.json record it.
type aka5GInput struct {
	ck, ik, rand [16]byte
	res          []byte
	sqn, ak      [6]byte
	autn         [16]byte
}

// chain5G is every key of one 5G AKA run (TS 33.501 6.1.3.2) and the
// keys that follow it.
type chain5G struct {
	resStar, hresStar         [16]byte
	kausf, kseaf, kamf        [32]byte
	knasEnc, knasInt, kRRCInt [16]byte
	kgnb, kn3iwf              [32]byte
}

// networkChain derives the keys as the home network and the serving network
// do: the ARPF has SQN and AK apart, so SQN xor AK is computed; XRES* and
// HXRES* come from XRES; the AMF names the UE by its SUPI "imsi-...".
func networkChain(t *testing.T, in aka5GInput, mcc, mnc, imsi string) chain5G {
	t.Helper()
	snn, err := ServingNetworkName(mcc, mnc)
	if err != nil {
		t.Fatal(err)
	}
	var sqnXorAK [6]byte
	for i := range sqnXorAK {
		sqnXorAK[i] = in.sqn[i] ^ in.ak[i]
	}
	var c chain5G
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("network: %v", err)
		}
	}
	c.resStar, err = RESStar(in.ck, in.ik, snn, in.rand, in.res) // XRES*
	check(err)
	c.hresStar = HRESStar(in.rand, c.resStar) // HXRES*, sent to the SEAF
	c.kausf, err = KAUSF(in.ck, in.ik, snn, sqnXorAK)
	check(err)
	c.kseaf, err = KSEAF(c.kausf, snn)
	check(err)
	c.kamf, err = KAMF(c.kseaf, "imsi-"+imsi, []byte{0x00, 0x00})
	check(err)
	c.knasEnc, err = AlgorithmKey(c.kamf, NASEnc, 2)
	check(err)
	c.knasInt, err = AlgorithmKey(c.kamf, NASInt, 2)
	check(err)
	c.kgnb, err = KgNB(c.kamf, 0, Access3GPP)
	check(err)
	c.kn3iwf, err = KgNB(c.kamf, 5, AccessNon3GPP)
	check(err)
	c.kRRCInt, err = AlgorithmKey(c.kgnb, RRCInt, 2) // at the gNB
	check(err)
	return c
}

// ueChain derives the keys as the UE does: the USIM returns RES, CK and IK;
// the ME takes SQN xor AK from AUTN, builds the SNN from the PLMN it
// attaches to, and knows its IMSI as digits. The SEAF's HRES* is computed
// from the UE's RES*.
func ueChain(t *testing.T, in aka5GInput, mcc, mnc, imsi string) chain5G {
	t.Helper()
	snn := "5G:mnc" + strings.Repeat("0", 3-len(mnc)) + mnc + ".mcc" + mcc + ".3gppnetwork.org"
	sqnXorAK := [6]byte(in.autn[:6])
	var c chain5G
	var err error
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("UE: %v", err)
		}
	}
	c.resStar, err = RESStar(in.ck, in.ik, snn, in.rand, in.res)
	check(err)
	c.hresStar = HRESStar(in.rand, c.resStar) // HRES*, at the SEAF
	c.kausf, err = KAUSF(in.ck, in.ik, snn, sqnXorAK)
	check(err)
	c.kseaf, err = KSEAF(c.kausf, snn)
	check(err)
	c.kamf, err = KAMF(c.kseaf, imsi, []byte{0x00, 0x00})
	check(err)
	c.knasEnc, err = AlgorithmKey(c.kamf, NASEnc, 2)
	check(err)
	c.knasInt, err = AlgorithmKey(c.kamf, NASInt, 2)
	check(err)
	c.kgnb, err = KgNB(c.kamf, 0, Access3GPP)
	check(err)
	c.kn3iwf, err = KgNB(c.kamf, 5, AccessNon3GPP)
	check(err)
	c.kRRCInt, err = AlgorithmKey(c.kgnb, RRCInt, 2)
	check(err)
	return c
}

func akaInputs(t *testing.T) []aka5GInput {
	t.Helper()
	var ins []aka5GInput
	for _, c := range vectors.Load[kdf5GCase](t, "kdf_5g.json") {
		if c.Kind != "res_star_xres_star" {
			continue
		}
		ins = append(ins, aka5GInput{
			ck: [16]byte(c.CK), ik: [16]byte(c.IK), rand: [16]byte(c.RAND), res: c.RES,
			sqn: [6]byte(c.SQN), ak: [6]byte(c.AK), autn: [16]byte(c.AUTN),
		})
	}
	if len(ins) == 0 {
		t.Fatal("no res_star_xres_star case in kdf_5g.json")
	}
	return ins
}

// TestChainUEAndNetworkAgree derives the 5G key chain from MILENAGE outputs
// the way the UE does and the way the network does, and checks that they
// agree, that the SEAF's HRES* check passes, and that it fails when the UE
// and the network disagree on the serving network.
func TestChainUEAndNetworkAgree(t *testing.T) {
	for i, in := range akaInputs(t) {
		for _, plmn := range [][3]string{{"208", "93", "208930000000001"}, {"001", "01", "001010123456789"}, {"310", "410", "310410000000042"}} {
			net := networkChain(t, in, plmn[0], plmn[1], plmn[2])
			ue := ueChain(t, in, plmn[0], plmn[1], plmn[2])
			if ue != net {
				t.Errorf("case %d, PLMN %s-%s: UE and network keys differ:\nUE  %x\nnet %x", i, plmn[0], plmn[1], ue, net)
			}
			// TS 33.501 6.1.3.2 step 10: the SEAF compares HRES* with HXRES*.
			if HRESStar(in.rand, ue.resStar) != net.hresStar {
				t.Errorf("case %d: the SEAF rejects a genuine RES*", i)
			}
		}
		// A UE that believes it is on another network computes another RES*:
		// the SEAF's check fails and no key matches.
		net := networkChain(t, in, "208", "93", "208930000000001")
		ue := ueChain(t, in, "208", "95", "208930000000001")
		if HRESStar(in.rand, ue.resStar) == net.hresStar || ue.kausf == net.kausf || ue.kamf == net.kamf {
			t.Errorf("case %d: keys agree across different serving networks", i)
		}
		// A wrong RES (e.g. another SIM) fails the HRES* check.
		bad := in
		bad.res = append([]byte(nil), in.res...)
		bad.res[0] ^= 1
		if ueChain(t, bad, "208", "93", "208930000000001").hresStar == net.hresStar {
			t.Errorf("case %d: HRES* of a wrong RES matches HXRES*", i)
		}
	}
}

// TestChainKnownAnswer freezes the chain for the wmnsk/milenage dummy
// MILENAGE output (kdf_5g.json case 1) on the SNN
// "5G:mnc093.mcc208.3gppnetwork.org", SUPI imsi-208930000000001,
// ABBA 0x0000, uplink NAS COUNT 0 (KgNB) and 5 (KN3IWF), 128-NEA2/128-NIA2.
// No published vector covers these (see ../shared/vectors/README.md "Not
// found"). The values were computed by this implementation and cross-checked
// with a separate one-off Python script (hmac, hashlib) that is not in the
// repository; they agreed on every value.
func TestChainKnownAnswer(t *testing.T) {
	want := map[string]string{
		"XRES*":   "444b2872a27e7046c4d2f16882f23634",
		"HXRES*":  "7bba58cba263399b310d18ff83d1020f",
		"KAUSF":   "307f4d6fd01e75ba06e4e90acfe107a9e5b8d238d69d6b3678e2838a6f88246f",
		"KSEAF":   "4cb0adf70a6927fe70675474ed70cd46150282158fff9005f373ddbae242a276",
		"KAMF":    "58733369c0d1a260869b8b6c504acc3ad7e8080fbf78274b2b492adcb82bcccf",
		"KNASenc": "ff6efa66d25e55c91fb49e5177dee1ef",
		"KNASint": "8c250b416027b464c9ed6f5284837594",
		"KgNB":    "849964910afcc29065df3811d724c384a7a3dde23bba77700ae4fc50c1957d0d",
		"KN3IWF":  "22ba29308c0a97294eb1b4a3032393bdbc32710a0ef9ca2ec05900971cb5f2f4",
		"KRRCint": "cdecd8fd23af89c64425dcd90478ad2a",
	}
	in := akaInputs(t)[0]
	if hex.EncodeToString(in.ck[:]) != "b379874b3d183d2a21291d439e7761e1" {
		t.Fatalf("kdf_5g.json case 1 is not the wmnsk dummy vector (CK %x)", in.ck)
	}
	c := networkChain(t, in, "208", "93", "208930000000001")
	got := map[string][]byte{
		"XRES*": c.resStar[:], "HXRES*": c.hresStar[:], "KAUSF": c.kausf[:], "KSEAF": c.kseaf[:],
		"KAMF": c.kamf[:], "KNASenc": c.knasEnc[:], "KNASint": c.knasInt[:], "KgNB": c.kgnb[:],
		"KN3IWF": c.kn3iwf[:], "KRRCint": c.kRRCInt[:],
	}
	for name, w := range want {
		if hex.EncodeToString(got[name]) != w {
			t.Errorf("%s = %x, want %s", name, got[name], w)
		}
	}
}

// TestKgNBCountEncoding pins the byte order of the NAS COUNT: TS 33.501
// A.9 takes it as a 4-octet big-endian value.
func TestKgNBCountEncoding(t *testing.T) {
	var kamf [32]byte
	for _, count := range []uint32{0, 1, 0x00010000, 0xffffffff} {
		got, err := KgNB(kamf, count, Access3GPP)
		if err != nil {
			t.Fatal(err)
		}
		p0 := binary.BigEndian.AppendUint32(nil, count)
		if want := refKDF(kamf[:], 0x6E, p0, []byte{1}); !bytes.Equal(got[:], want) {
			t.Errorf("KgNB(count %#x) = %x, want %x", count, got, want)
		}
	}
}

package kdf

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// FC values of TS 33.501 Annex A and TS 33.402 A.2 (allocated in TS 33.220).
const (
	fcCKIKPrime    = 0x20 // TS 33.402 A.2, TS 33.501 A.3
	fcAlgorithmKey = 0x69 // TS 33.501 A.8
	fcKAUSF        = 0x6A // TS 33.501 A.2
	fcRESStar      = 0x6B // TS 33.501 A.4
	fcKSEAF        = 0x6C // TS 33.501 A.6
	fcKAMF         = 0x6D // TS 33.501 A.7
	fcKgNB         = 0x6E // TS 33.501 A.9
)

// AlgorithmType is the algorithm type distinguisher of TS 33.501 A.8
// (Table A.8-1).
type AlgorithmType byte

// TS 33.501 Table A.8-1.
const (
	NASEnc AlgorithmType = 0x01
	NASInt AlgorithmType = 0x02
	RRCEnc AlgorithmType = 0x03
	RRCInt AlgorithmType = 0x04
	UPEnc  AlgorithmType = 0x05
	UPInt  AlgorithmType = 0x06
)

// AccessType is the access type distinguisher of TS 33.501 A.9 (Table A.9-1).
type AccessType byte

// TS 33.501 Table A.9-1.
const (
	Access3GPP    AccessType = 0x01
	AccessNon3GPP AccessType = 0x02
)

// ServingNetworkName returns the serving network name of TS 24.501 9.12.1
// (TS 33.501 6.1.1.4) for a PLMN: "5G:mnc<MNC>.mcc<MCC>.3gppnetwork.org",
// with a 2-digit MNC padded to 3 digits with a leading zero.
func ServingNetworkName(mcc, mnc string) (string, error) {
	if len(mcc) != 3 || !isDigits(mcc) {
		return "", fmt.Errorf("kdf: serving network name: MCC %q is not 3 digits", mcc)
	}
	if (len(mnc) != 2 && len(mnc) != 3) || !isDigits(mnc) {
		return "", fmt.Errorf("kdf: serving network name: MNC %q is not 2 or 3 digits", mnc)
	}
	if len(mnc) == 2 {
		mnc = "0" + mnc
	}
	return "5G:mnc" + mnc + ".mcc" + mcc + ".3gppnetwork.org", nil
}

// KAUSF derives KAUSF for 5G AKA (TS 33.501 A.2):
// KDF(CK||IK, FC=0x6A, P0=SN name, P1=SQN xor AK).
// The UE takes SQN xor AK from the first 6 octets of AUTN.
func KAUSF(ck, ik [16]byte, snn string, sqnXorAK [6]byte) ([32]byte, error) {
	if err := checkSNN(snn); err != nil {
		return [32]byte{}, fmt.Errorf("kdf: KAUSF: %w", err)
	}
	key := concatKey(ck, ik)
	var buf [128]byte
	s := append(buf[:0], fcKAUSF)
	s = appendParam(s, snn)
	s = appendParam(s, sqnXorAK[:])
	return hmacSHA256(key[:], s), nil
}

// RESStar derives RES* (UE) or, from XRES, XRES* (home network) as in
// TS 33.501 A.4: the 128 least significant bits of
// KDF(CK||IK, FC=0x6B, P0=SN name, P1=RAND, P2=RES). RES is 4 to 16 octets
// (TS 33.102 6.3.2).
func RESStar(ck, ik [16]byte, snn string, rand [16]byte, res []byte) ([16]byte, error) {
	if err := checkSNN(snn); err != nil {
		return [16]byte{}, fmt.Errorf("kdf: RES*: %w", err)
	}
	if len(res) < 4 || len(res) > 16 {
		return [16]byte{}, fmt.Errorf("kdf: RES*: RES is %d octets, want 4 to 16", len(res))
	}
	key := concatKey(ck, ik)
	var buf [128]byte
	s := append(buf[:0], fcRESStar)
	s = appendParam(s, snn)
	s = appendParam(s, rand[:])
	s = appendParam(s, res)
	out := hmacSHA256(key[:], s)
	return [16]byte(out[16:]), nil
}

// HRESStar derives HXRES* (home network, from XRES*) or HRES* (SEAF, from
// RES*) as in TS 33.501 A.5: the 128 least significant bits of
// SHA-256(RAND || RES*).
func HRESStar(rand, resStar [16]byte) [16]byte {
	var in [32]byte
	copy(in[:16], rand[:])
	copy(in[16:], resStar[:])
	h := sha256.Sum256(in[:])
	return [16]byte(h[16:])
}

// KSEAF derives KSEAF from KAUSF (TS 33.501 A.6):
// KDF(KAUSF, FC=0x6C, P0=SN name).
func KSEAF(kausf [32]byte, snn string) ([32]byte, error) {
	if err := checkSNN(snn); err != nil {
		return [32]byte{}, fmt.Errorf("kdf: KSEAF: %w", err)
	}
	var buf [128]byte
	s := append(buf[:0], fcKSEAF)
	s = appendParam(s, snn)
	return hmacSHA256(kausf[:], s), nil
}

// KAMF derives KAMF from KSEAF (TS 33.501 A.7):
// KDF(KSEAF, FC=0x6D, P0=SUPI, P1=ABBA).
//
// supi is "imsi-<digits>" or "nai-<NAI>" (TS 29.571 5.3.2), or bare IMSI
// digits. A.7.0: P0 is the IMSI digits (TS 23.003 2.2) or the NAI, as a
// character string. abba is the ABBA parameter as received (TS 24.501
// 9.11.3.10, 2 to 255 octets); A.7.1 defines 0x0000.
func KAMF(kseaf [32]byte, supi string, abba []byte) ([32]byte, error) {
	p0, err := supiP0(supi)
	if err != nil {
		return [32]byte{}, fmt.Errorf("kdf: KAMF: %w", err)
	}
	if len(abba) < 2 || len(abba) > 255 {
		return [32]byte{}, fmt.Errorf("kdf: KAMF: ABBA is %d octets, want 2 to 255", len(abba))
	}
	var buf [128]byte
	s := append(buf[:0], fcKAMF)
	s = appendParam(s, p0)
	s = appendParam(s, abba)
	return hmacSHA256(kseaf[:], s), nil
}

// AlgorithmKey derives a NAS, RRC or UP algorithm key (TS 33.501 A.8): the
// 128 least significant bits of KDF(key, FC=0x69, P0=algorithm type
// distinguisher, P1=algorithm identity). key is KAMF for NAS keys and KgNB
// for RRC and UP keys; algorithm is the 4-bit identity (e.g. 2 for
// 128-NEA2/128-NIA2).
func AlgorithmKey(key [32]byte, typ AlgorithmType, algorithm byte) ([16]byte, error) {
	if typ < NASEnc || typ > UPInt {
		return [16]byte{}, fmt.Errorf("kdf: algorithm key: type distinguisher 0x%02x is not 0x01 to 0x06", byte(typ))
	}
	if algorithm > 0x0F {
		return [16]byte{}, fmt.Errorf("kdf: algorithm key: algorithm identity %d is not 4 bits", algorithm)
	}
	s := [7]byte{fcAlgorithmKey, byte(typ), 0x00, 0x01, algorithm, 0x00, 0x01}
	out := hmacSHA256(key[:], s[:])
	return [16]byte(out[16:]), nil
}

// KgNB derives KgNB (3GPP access) or KN3IWF (non-3GPP access) from KAMF
// (TS 33.501 A.9): KDF(KAMF, FC=0x6E, P0=uplink NAS COUNT, P1=access type
// distinguisher).
func KgNB(kamf [32]byte, ulNASCount uint32, access AccessType) ([32]byte, error) {
	if access != Access3GPP && access != AccessNon3GPP {
		return [32]byte{}, fmt.Errorf("kdf: KgNB: access type distinguisher 0x%02x is not 0x01 or 0x02", byte(access))
	}
	var s [10]byte
	s[0] = fcKgNB
	binary.BigEndian.PutUint32(s[1:5], ulNASCount)
	s[5], s[6] = 0x00, 0x04
	s[7] = byte(access)
	s[8], s[9] = 0x00, 0x01
	return hmacSHA256(kamf[:], s[:]), nil
}

// CKIKPrime derives CK' and IK' (TS 33.402 A.2, TS 33.501 A.3):
// CK' || IK' = KDF(CK||IK, FC=0x20, P0=access network identity,
// P1=SQN xor AK). For EAP-AKA' in 5G the access network identity is the
// serving network name (TS 33.501 6.1.3.1); for WLAN access to EPC it is
// e.g. "WLAN" (TS 24.302 8.1.1).
func CKIKPrime(ck, ik [16]byte, networkName string, sqnXorAK [6]byte) (ckPrime, ikPrime [16]byte, err error) {
	if networkName == "" || len(networkName) > maxParam {
		return ckPrime, ikPrime, fmt.Errorf("kdf: CK'/IK': access network identity is %d octets, want 1 to %d", len(networkName), maxParam)
	}
	key := concatKey(ck, ik)
	var buf [128]byte
	s := append(buf[:0], fcCKIKPrime)
	s = appendParam(s, networkName)
	s = appendParam(s, sqnXorAK[:])
	out := hmacSHA256(key[:], s)
	return [16]byte(out[:16]), [16]byte(out[16:]), nil
}

// concatKey returns CK || IK, the key of A.2, A.3 and A.4.
func concatKey(ck, ik [16]byte) [32]byte {
	var k [32]byte
	copy(k[:16], ck[:])
	copy(k[16:], ik[:])
	return k
}

// checkSNN checks that snn looks like a serving network name
// (TS 24.501 9.12.1: "5G:" followed by the SN Id).
func checkSNN(snn string) error {
	if len(snn) <= len("5G:") || !strings.HasPrefix(snn, "5G:") {
		return fmt.Errorf("serving network name %q does not have the form 5G:<SN Id>", snn)
	}
	if len(snn) > maxParam {
		return fmt.Errorf("serving network name is %d octets, longer than %d", len(snn), maxParam)
	}
	return nil
}

// supiP0 returns P0 of TS 33.501 A.7.0 for a SUPI.
func supiP0(supi string) (string, error) {
	switch {
	case strings.HasPrefix(supi, "imsi-"):
		imsi := supi[len("imsi-"):]
		if !isIMSI(imsi) {
			return "", fmt.Errorf("SUPI %q: IMSI is not 6 to 15 digits", supi)
		}
		return imsi, nil
	case strings.HasPrefix(supi, "nai-"):
		nai := supi[len("nai-"):]
		if nai == "" || len(nai) > maxParam {
			return "", fmt.Errorf("SUPI %q: NAI is %d octets, want 1 to %d", supi, len(nai), maxParam)
		}
		return nai, nil
	case isIMSI(supi):
		return supi, nil
	}
	return "", fmt.Errorf("SUPI %q is neither imsi-<digits>, nai-<NAI> nor 6 to 15 IMSI digits", supi)
}

// isIMSI reports whether s is an IMSI: MCC (3) + MNC (2 or 3) + MSIN,
// at most 15 digits (TS 23.003 2.2).
func isIMSI(s string) bool {
	return len(s) >= 6 && len(s) <= 15 && isDigits(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

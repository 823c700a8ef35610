package kdf

import "testing"

var (
	sink16 [16]byte
	sink32 [32]byte
)

func BenchmarkDerive(b *testing.B) {
	key := make([]byte, 32)
	snn := []byte("5G:mnc093.mcc208.3gppnetwork.org")
	sqnXorAK := make([]byte, 6)
	b.ReportAllocs()
	for b.Loop() {
		k, err := Derive(key, 0x6A, snn, sqnXorAK)
		if err != nil {
			b.Fatal(err)
		}
		sink32 = k
	}
}

func BenchmarkRESStar(b *testing.B) {
	var ck, ik, rand [16]byte
	res := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		k, err := RESStar(ck, ik, "5G:mnc093.mcc208.3gppnetwork.org", rand, res)
		if err != nil {
			b.Fatal(err)
		}
		sink16 = k
	}
}

// BenchmarkChain5G is the whole network side of one 5G AKA: XRES*, HXRES*,
// KAUSF, KSEAF, KAMF, KNASenc, KNASint and KgNB.
func BenchmarkChain5G(b *testing.B) {
	var ck, ik, rand [16]byte
	var sqnXorAK [6]byte
	res := make([]byte, 8)
	abba := []byte{0, 0}
	const snn = "5G:mnc093.mcc208.3gppnetwork.org"
	b.ReportAllocs()
	for b.Loop() {
		xres, err := RESStar(ck, ik, snn, rand, res)
		if err != nil {
			b.Fatal(err)
		}
		sink16 = HRESStar(rand, xres)
		kausf, _ := KAUSF(ck, ik, snn, sqnXorAK)
		kseaf, _ := KSEAF(kausf, snn)
		kamf, err := KAMF(kseaf, "imsi-208930000000001", abba)
		if err != nil {
			b.Fatal(err)
		}
		sink16, _ = AlgorithmKey(kamf, NASEnc, 2)
		sink16, _ = AlgorithmKey(kamf, NASInt, 2)
		sink32, _ = KgNB(kamf, 0, Access3GPP)
	}
}

func BenchmarkEAPAKAPrime(b *testing.B) {
	var ck, ik [16]byte
	var sqnXorAK [6]byte
	id := []byte("6208930000000001@nai.5gc.mnc093.mcc208.3gppnetwork.org")
	b.ReportAllocs()
	for b.Loop() {
		ckp, ikp, err := CKIKPrime(ck, ik, "5G:mnc093.mcc208.3gppnetwork.org", sqnXorAK)
		if err != nil {
			b.Fatal(err)
		}
		k := EAPAKAPrime(ckp, ikp, id)
		sink32 = k.KAut
	}
}

func BenchmarkEAPAKA(b *testing.B) {
	var ck, ik [16]byte
	id := []byte("0208930000000001@wlan.mnc093.mcc208.3gppnetwork.org")
	b.ReportAllocs()
	for b.Loop() {
		k := EAPKeysFromMK(EAPAKAMasterKey(id, ck, ik))
		sink16 = k.KAut
	}
}

func BenchmarkEAPReauth(b *testing.B) {
	var nonce [16]byte
	var mk [20]byte
	id := []byte("Y24fNSrz8BP274jOJaF17WfxI8YO7QX00pMXk9XMMVOw7broaNhTczuFq53aEpOkk3L0dm@eapsim.foo")
	b.ReportAllocs()
	for b.Loop() {
		msk, _ := EAPReauthKeys(id, 1, nonce, mk)
		sink16 = [16]byte(msk[:16])
	}
}

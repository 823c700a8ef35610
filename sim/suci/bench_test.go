package suci

import (
	"testing"
)

var benchSchemes = []Scheme{SchemeNull, SchemeProfileA, SchemeProfileB}

func benchParams(b *testing.B, s Scheme) (Params, *PrivateKey) {
	if s == SchemeNull {
		return Params{}, nil
	}
	key, err := GenerateKey(s)
	if err != nil {
		b.Fatal(err)
	}
	return Params{Scheme: s, KeyID: 1, HNPublicKey: key.PublicKey()}, key
}

// BenchmarkConceal: the UE side, a fresh ephemeral key pair each time.
func BenchmarkConceal(b *testing.B) {
	supi := mustSUPI(b, "001010000000001", 2)
	for _, s := range benchSchemes {
		b.Run(s.String(), func(b *testing.B) {
			p, _ := benchParams(b, s)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Conceal(supi, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeconceal: the SIDF side, from the SUCI string as a UDM gets it
// (parse + de-conceal).
func BenchmarkDeconceal(b *testing.B) {
	supi := mustSUPI(b, "001010000000001", 2)
	for _, s := range benchSchemes {
		b.Run(s.String(), func(b *testing.B) {
			p, key := benchParams(b, s)
			suci, err := Conceal(supi, p)
			if err != nil {
				b.Fatal(err)
			}
			str := suci.String()
			keys := Keys{1: key}
			b.ReportAllocs()
			for b.Loop() {
				v, err := Parse(str)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := keys.Deconceal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnmarshalBinary: the NAS form parser, as the AMF runs it.
func BenchmarkUnmarshalBinary(b *testing.B) {
	nas := mustHex("01" + "722410" + "f0ff" + "01" + "01" + specOutputA)
	b.ReportAllocs()
	for b.Loop() {
		var s SUCI
		if err := s.UnmarshalBinary(nas); err != nil {
			b.Fatal(err)
		}
	}
}

package udr

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simgate/simgate/sim/aka"
)

const rangeFile100k = `
seed: bench
sims:
  - range: {first_imsi: "001010000000001", count: 100000, first_msisdn: "819000000001"}
    k: %s
    op: ` + set1OP + `
    group: fleet
`

// BenchmarkImport100k is `simgate sim import` of a 100,000-SIM range: parse
// the file, generate the keys (OPc from OP per SIM), write the store and
// write the SIM file, on a fresh store each iteration.
func BenchmarkImport100k(b *testing.B) {
	for _, mode := range []string{KeyRandom, KeyDerive} {
		b.Run("k="+mode, func(b *testing.B) {
			text := fmt.Sprintf(rangeFile100k, mode)
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				s, err := Open(filepath.Join(dir, FileName))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				f, err := ReadImportFile(strings.NewReader(text), FormatYAML)
				if err != nil {
					b.Fatal(err)
				}
				sims, err := f.Expand(ExpandOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.AddSIMs(sims); err != nil {
					b.Fatal(err)
				}
				if err := WriteSIMFile(filepath.Join(dir, "sims.json"), NewSIMFile(sims)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if n, _ := s.CountSIMs(); n != 100_000 {
					b.Fatalf("%d SIMs stored", n)
				}
				s.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkAddSIMs100k is the store part alone: 100,000 prepared records.
func BenchmarkAddSIMs100k(b *testing.B) {
	f, err := ReadImportFile(strings.NewReader(fmt.Sprintf(rangeFile100k, KeyDerive)), FormatYAML)
	if err != nil {
		b.Fatal(err)
	}
	sims, err := f.Expand(ExpandOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), FileName))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.AddSIMs(sims); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

func benchStore(b *testing.B, n int) *Store {
	s, _ := openTemp(b)
	sims := make([]SIM, n)
	for i := range sims {
		sims[i] = simN(i)
	}
	if err := s.AddSIMs(sims); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkUpdateSQN is one AuC SQN step: a write transaction with fsync.
func BenchmarkUpdateSQN(b *testing.B) {
	s := benchStore(b, 1000)
	inc := func(_ aka.Credentials, sqn uint64) (uint64, error) { return sqn + 32, nil }
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := s.UpdateSQN(simN(1).IMSI, inc); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 64 callers per CPU: registrations of many UEs at once, as the AMF's
	// workers make them.
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if err := s.UpdateSQN(simN(i%1000).IMSI, inc); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

func BenchmarkGetSIM(b *testing.B) {
	s := benchStore(b, 100_000)
	i := 0
	for b.Loop() {
		i++
		if _, err := s.GetSIM(simN(i % 100_000).IMSI); err != nil {
			b.Fatal(err)
		}
	}
}

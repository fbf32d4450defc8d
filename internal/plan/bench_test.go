package plan

import (
	"bytes"
	"fmt"
	"testing"
)

// Benchmarks for the numbers the performance issue quotes. Inputs are
// sized like real tenants: a first-party service principal with a few
// dozen keys and names, certificates of about 1 KB.

func benchKeys(n, salt int) []Key {
	out := make([]Key, n)
	for i := range out {
		der := bytes.Repeat([]byte{byte(i), byte(salt)}, 512) // ~1 KB, like an RSA-2048 certificate
		out[i] = Key{KeyID: fmt.Sprintf("k%d", i), DER: der, End: genNow.AddDate(0, 0, i-n/4), Type: KeyTypeX509, Usage: KeyUsageVerify}
	}
	return out
}

func BenchmarkMergeKeys(b *testing.B) {
	for _, n := range []int{4, 32, 256} {
		existing := benchKeys(n, 1)
		add := benchKeys(2, 2)
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MergeKeys(existing, add, genNow, MergeOptions{})
			}
		})
	}
}

func BenchmarkUnionSPNs(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		var existing, want []string
		for i := range n {
			existing = append(existing, fmt.Sprintf("https://host%d.contoso.com/", i))
		}
		for i := range 12 {
			want = append(want, fmt.Sprintf("https://HOST%d.contoso.com", i*(n/6+1)))
		}
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				UnionSPNs(existing, want)
			}
		})
	}
}

func BenchmarkBuildPlan(b *testing.B) {
	fresh := contoso("global")
	stageNext(&fresh)
	addExchange2010(&fresh)
	fresh.o.FirstPartySP.Keys = append(fresh.o.FirstPartySP.Keys, benchKeys(30, 3)...)
	d, _, err := Derive(fresh.t, fresh.p, fresh.o)
	if err != nil {
		b.Fatal(err)
	}
	converged := apply(d, fresh.o)
	for name, o := range map[string]Observed{"fresh": fresh.o, "converged": converged} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				BuildPlan(d, o, genNow)
			}
		})
	}
	b.Run("derive+build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d, _, _ := Derive(fresh.t, fresh.p, fresh.o)
			BuildPlan(d, fresh.o, genNow)
		}
	})
}

package plan

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// shuffled is a permutation of s chosen by seed (Fisher-Yates with a
// xorshift generator): checkMerge and checkUnion only try the reversed
// order, the fuzzer then tries every other one its inputs lead to.
func shuffled[T any](s []T, seed uint64) []T {
	out := slices.Clone(s)
	x := seed | 1
	for i := len(out) - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func seedOf(parts ...[]byte) uint64 {
	h := uint64(14695981039346656037) // FNV-1a
	for _, p := range parts {
		for _, b := range p {
			h = (h ^ uint64(b)) * 1099511628211
		}
	}
	return h
}

// decodeKeys turns fuzz bytes into two key lists, three bytes a key: list
// and certificate, identification variant, end offset in days (0 =
// unknown). Structured decoding keeps the fuzzer on inputs where
// thumbprints collide instead of on random bytes that never match.
func decodeKeys(data []byte) (existing, add []Key) {
	for i := 0; i+2 < len(data) && i < 3*24; i += 3 {
		b0, b1, b2 := data[i], data[i+1], data[i+2]
		key := genKey(int(b0>>1), int(b1), int(int8(b2))%15, "k"+string(rune('a'+i/3)))
		if b0&1 == 0 {
			existing = append(existing, key)
		} else {
			add = append(add, key)
		}
	}
	return existing, add
}

// FuzzMergeKeys holds MergeKeys, RemoveKeys and their undos to every rule
// checkMerge and checkRemove know, on structured key lists plus one free-
// form thumbprint string to exercise normalisation.
func FuzzMergeKeys(f *testing.F) {
	f.Add([]byte{0, 0, 10, 1, 0, 10}, int8(0), false, "")
	f.Add([]byte{0, 3, 0xf6, 0, 0, 5, 1, 1, 20}, int8(0), false, "")
	f.Add([]byte{2, 4, 3, 3, 2, 0, 1, 0, 1}, int8(-3), true, "\u200ede ad be ef")
	f.Add([]byte{0, 5, 0, 1, 5, 2, 0, 0, 0}, int8(1), false, "ıİ")
	f.Fuzz(func(t *testing.T, data []byte, shift int8, dropAlone bool, odd string) {
		existing, add := decodeKeys(data)
		if odd != "" {
			existing = append(existing, Key{KeyID: "odd", Thumbprint: odd, End: genNow.AddDate(0, 0, 1)})
			add = append(add, Key{KeyID: "odd2", Thumbprint: strings.ToLower(odd), End: genNow.AddDate(0, 0, 2)})
		}
		now := genNow.AddDate(0, 0, int(shift)%20)
		opts := MergeOptions{DropExpiredWithoutAdd: dropAlone}
		checkMerge(t, existing, add, now, opts)
		// Order-independent under any permutation, not only reversal.
		seed := seedOf(data, []byte(odd))
		d := MergeKeys(existing, add, now, opts)
		p := MergeKeys(shuffled(existing, seed), shuffled(add, seed>>1), now, opts)
		if !reflect.DeepEqual(thumbSet(p.Keys), thumbSet(d.Keys)) || p.Changed != d.Changed {
			t.Fatalf("permuted inputs give %v (changed %v), in order %v (changed %v)", sortedKeys(thumbSet(p.Keys)), p.Changed, sortedKeys(thumbSet(d.Keys)), d.Changed)
		}
		var remove []string
		for _, k := range add {
			remove = append(remove, k.Thumbprint)
		}
		checkRemove(t, existing, remove, now)
	})
}

// FuzzUnionSPNs: newline-separated lists of names, free-form.
func FuzzUnionSPNs(f *testing.F) {
	f.Add("https://mail.contoso.com", "https://mail.contoso.com/\nhttps://autodiscover.contoso.com/")
	f.Add("00000002-0000-0ff1-ce00-000000000000/*.CONTOSO.com", "00000002-0000-0ff1-ce00-000000000000/*.contoso.com")
	f.Add("", "https://a/\nHTTPS://A//\n\n  \nhttp://a")
	f.Add("x\nx\nX", "x/\nhttps://x\n")
	f.Fuzz(func(t *testing.T, existing, want string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		checkUnion(t, split(existing), split(want))
		w := split(want)
		d := UnionSPNs(split(existing), w)
		if p := UnionSPNs(split(existing), shuffled(w, seedOf([]byte(existing), []byte(want)))); !slices.Equal(p.SPNs, d.SPNs) {
			t.Fatalf("permuted wanted names give %q, in order %q", p.SPNs, d.SPNs)
		}
	})
}

// FuzzParseBuild: whatever parses prints back to the same build.
func FuzzParseBuild(f *testing.F) {
	for _, s := range []string{"15.2.1748.24", "Version 15.2 (Build 1748.24)", "version 14.3 (build 123.4)", "15.2.1748", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBuild(s)
		if err != nil {
			return
		}
		again, err := ParseBuild(b.String())
		if err != nil || again != b || b.Product() == "" {
			t.Fatalf("%q parsed as %v, which prints as %q and parses back as %v (%v)", s, b, b.String(), again, err)
		}
		dedicatedMinimum(b) // must not panic on any parsed build
	})
}

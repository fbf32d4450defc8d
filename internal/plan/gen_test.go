package plan

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// Generators and invariant checks shared by the property tests
// (testing/quick) and the fuzz targets, so both hold MergeKeys and
// UnionSPNs to exactly the same rules.

var genNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// A small pool makes thumbprint collisions, the interesting case, common.
var derPool = func() [][]byte {
	var out [][]byte
	for i := range 6 {
		out = append(out, []byte(fmt.Sprintf("certificate #%d public DER", i)))
	}
	return out
}()

// genKey builds one key from a few choices: which certificate, how it is
// identified (DER, thumbprint in either case with noise, both, both but
// disagreeing, neither) and when it ends relative to genNow.
func genKey(pool, variant, endDays int, keyID string) Key {
	der := derPool[pool%len(derPool)]
	tp := certs.Thumbprint(der)
	k := Key{KeyID: keyID, Type: KeyTypeX509, Usage: KeyUsageVerify, Start: genNow.AddDate(-1, 0, 0)}
	switch variant % 6 {
	case 0:
		k.DER = der
	case 1:
		k.Thumbprint = tp
	case 2:
		k.Thumbprint = "\u200e" + strings.ToLower(tp[:20]) + " " + tp[20:] // as copied from the Windows dialog
	case 3:
		k.DER, k.Thumbprint = der, tp
	case 4:
		k.DER, k.Thumbprint = der, certs.Thumbprint(derPool[(pool+1)%len(derPool)]) // customKeyIdentifier set to something else
	case 5:
		// neither: only a keyId
	}
	if endDays != 0 {
		k.End = genNow.AddDate(0, 0, endDays)
	}
	return k
}

// keyList is a quick.Generator of short key lists.
type keyList []Key

func (keyList) Generate(r *rand.Rand, _ int) reflect.Value {
	n := r.Intn(7)
	ks := make(keyList, n)
	for i := range ks {
		end := r.Intn(21) - 10 // -10..10 days, 0 = unknown
		if r.Intn(10) == 0 {
			end = 0
		}
		v := r.Intn(6)
		if v == 5 && r.Intn(3) > 0 {
			v = 0 // keep keys with no identity rare
		}
		ks[i] = genKey(r.Intn(len(derPool)), v, end, fmt.Sprintf("kid-%d", r.Intn(1000)))
	}
	return reflect.ValueOf(ks)
}

func thumbSet(keys []Key) map[string]bool {
	out := map[string]bool{}
	for _, k := range keys {
		if tp := thumbprintOf(k); tp != "" {
			out[tp] = true
		}
	}
	return out
}

// checkMerge asserts every rule MergeKeys promises, for any input.
func checkMerge(t *testing.T, existing, add []Key, now time.Time, opts MergeOptions) {
	t.Helper()
	d := MergeKeys(existing, add, now, opts)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("MergeKeys(existing=%s, add=%s, opts=%+v): "+format, append([]any{dump(existing), dump(add), opts}, args...)...)
	}
	if d.Reason == "" {
		fail("empty reason")
	}
	got := thumbSet(d.Keys)

	// Never drops an unexpired key, ours or not.
	noID := 0
	for _, k := range existing {
		if expiredAt(k, now) {
			continue
		}
		if tp := thumbprintOf(k); tp != "" {
			if !got[tp] {
				fail("unexpired key %s was dropped", tp)
			}
		} else {
			noID++
		}
	}
	gotNoID := 0
	for _, k := range d.Keys {
		if thumbprintOf(k) == "" {
			gotNoID++
		}
	}
	if gotNoID < noID {
		fail("an unexpired key without thumbprint was dropped")
	}

	// Every usable key asked for is there afterwards.
	for _, k := range add {
		if tp := thumbprintOf(k); tp != "" && !expiredAt(k, now) && !got[tp] {
			fail("key %s was asked for but is missing", tp)
		}
	}

	if d.Changed {
		seen := map[string]bool{}
		for _, k := range d.Keys {
			tp := thumbprintOf(k)
			if tp != "" && seen[tp] {
				fail("duplicate thumbprint %s in a written collection", tp)
			}
			seen[tp] = true
			if expiredAt(k, now) {
				fail("expired key %s in a written collection", tp)
			}
		}
		// Existing keys first, in order, then the added ones.
		kept := d.Keys[:len(d.Keys)-len(d.Added)]
		for i, k := range d.Keys[len(kept):] {
			if thumbprintOf(k) != d.Added[i] {
				fail("added keys out of order: %v", d.Added)
			}
		}
		j := 0
		for _, k := range existing {
			if j < len(kept) && sameKey(k, kept[j]) {
				j++
			}
		}
		if j != len(kept) {
			fail("kept keys are not the existing keys in their order")
		}
		if !opts.DropExpiredWithoutAdd && len(d.Added) == 0 {
			fail("changed without adding anything")
		}
	} else {
		if len(d.Added) > 0 || len(d.Dropped) > 0 {
			fail("unchanged but Added=%v Dropped=%d", d.Added, len(d.Dropped))
		}
		if len(d.Keys) != len(existing) {
			fail("unchanged but %d keys instead of %d", len(d.Keys), len(existing))
		}
		for i := range existing {
			if !sameKey(existing[i], d.Keys[i]) {
				fail("unchanged but key %d differs", i)
			}
		}
	}

	// Idempotent: merging the same keys again writes nothing.
	if again := MergeKeys(d.Keys, add, now, opts); again.Changed {
		fail("second merge changed again: %s", again.Reason)
	}

	// The set of thumbprints does not depend on the order of either list.
	rev := MergeKeys(reversed(existing), reversed(add), now, opts)
	if !reflect.DeepEqual(thumbSet(rev.Keys), got) || rev.Changed != d.Changed {
		fail("order matters: %v vs %v", sortedKeys(thumbSet(rev.Keys)), sortedKeys(got))
	}

	// Undo of the add leaves exactly the kept existing keys.
	if d.Changed {
		u := UndoAdd(d.Keys, d.Added)
		if len(u.Keys) != len(d.Keys)-len(d.Added) {
			fail("UndoAdd left %d keys, want %d", len(u.Keys), len(d.Keys)-len(d.Added))
		}
	}
}

// checkRemove asserts RemoveKeys' rules and that UndoRemove reverses it.
func checkRemove(t *testing.T, existing []Key, remove []string, now time.Time) {
	t.Helper()
	d := RemoveKeys(existing, remove, now)
	want := map[string]bool{}
	for _, r := range remove {
		want[normThumbprint(r)] = true
	}
	got := thumbSet(d.Keys)
	for _, k := range existing {
		tp := thumbprintOf(k)
		if !expiredAt(k, now) && tp != "" && !want[tp] && !got[tp] {
			t.Fatalf("RemoveKeys dropped unlisted unexpired key %s", tp)
		}
		if d.Changed && want[tp] && got[tp] {
			t.Fatalf("RemoveKeys kept listed key %s", tp)
		}
	}
	if !d.Changed && len(d.Keys) != len(existing) {
		t.Fatalf("unchanged but %d keys instead of %d", len(d.Keys), len(existing))
	}
	var back []Key
	for _, x := range d.Dropped {
		back = append(back, x.Key)
	}
	u := UndoRemove(d.Keys, back)
	if !reflect.DeepEqual(thumbSet(u.Keys), thumbSet(existing)) {
		t.Fatalf("UndoRemove did not restore the thumbprints: %v vs %v", sortedKeys(thumbSet(u.Keys)), sortedKeys(thumbSet(existing)))
	}
	if again := UndoRemove(u.Keys, back); again.Changed {
		t.Fatalf("second UndoRemove changed again: %s", again.Reason)
	}
}

func sameKey(a, b Key) bool {
	return a.KeyID == b.KeyID && thumbprintOf(a) == thumbprintOf(b) && a.End.Equal(b.End) && slices.Equal(a.DER, b.DER)
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func dump(ks []Key) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("{%s tp=%q der=%d end=%s}", k.KeyID, short(thumbprintOf(k)), len(k.DER), day(k.End)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// spnPool holds spellings that collide in every way UnionSPNs must handle.
var spnPool = []string{
	"https://mail.contoso.com",
	"https://mail.contoso.com/",
	"HTTPS://MAIL.CONTOSO.COM//",
	"https://autodiscover.contoso.com/",
	"http://mail.contoso.com",
	"http://mail.contoso.com/",
	"00000002-0000-0ff1-ce00-000000000000/*.contoso.com",
	"00000002-0000-0FF1-CE00-000000000000/*.CONTOSO.com",
	"00000002-0000-0ff1-ce00-000000000000",
	" https://owa.fabrikam.net/ ",
	"",
	"   ",
}

type spnList []string

func (spnList) Generate(r *rand.Rand, _ int) reflect.Value {
	n := r.Intn(8)
	out := make(spnList, n)
	for i := range out {
		out[i] = spnPool[r.Intn(len(spnPool))]
	}
	return reflect.ValueOf(out)
}

// checkUnion asserts every rule UnionSPNs and UndoSPNs promise.
func checkUnion(t *testing.T, existing, want []string) {
	t.Helper()
	d := UnionSPNs(existing, want)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("UnionSPNs(%q, %q): "+format, append([]any{existing, want}, args...)...)
	}
	if d.Reason == "" {
		fail("empty reason")
	}
	if len(d.SPNs) < len(existing) || !slices.Equal(d.SPNs[:len(existing)], existing) {
		fail("existing names changed or moved: %q", d.SPNs)
	}
	if !slices.Equal(d.SPNs[len(existing):], d.Added) || d.Changed != (len(d.Added) > 0) {
		fail("Added %q does not match the tail %q", d.Added, d.SPNs[len(existing):])
	}
	have := map[string]bool{}
	for _, s := range existing {
		have[spnKey(s)] = true
	}
	for i, a := range d.Added {
		if have[spnKey(a)] {
			fail("added %q although an equivalent name exists", a)
		}
		if i > 0 && spnKey(d.Added[i-1]) >= spnKey(a) {
			fail("added names not sorted and unique: %q", d.Added)
		}
	}
	all := map[string]bool{}
	for _, s := range d.SPNs {
		all[spnKey(s)] = true
	}
	for _, w := range want {
		if strings.TrimSpace(w) != "" && !all[spnKey(w)] {
			fail("wanted %q is missing", w)
		}
	}
	if again := UnionSPNs(d.SPNs, want); again.Changed {
		fail("second union changed again: %q", again.Added)
	}
	if rev := UnionSPNs(existing, reversed(want)); !slices.Equal(rev.SPNs, d.SPNs) {
		fail("order of wanted names matters: %q vs %q", rev.SPNs, d.SPNs)
	}
	if u := UndoSPNs(d.SPNs, d.Added); !slices.Equal(u.SPNs, existing) || u.Changed != d.Changed {
		fail("undo did not restore: %q", u.SPNs)
	}
}

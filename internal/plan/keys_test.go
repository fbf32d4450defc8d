package plan

import (
	"slices"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

var (
	derA = []byte("certificate A")
	derB = []byte("certificate B")
	derC = []byte("certificate C")
	tpA  = certs.Thumbprint(derA)
	tpB  = certs.Thumbprint(derB)
	tpC  = certs.Thumbprint(derC)
)

func k(id string, der []byte, end time.Time) Key {
	return Key{KeyID: id, DER: der, End: end, Start: genNow.AddDate(-1, 0, 0), Type: KeyTypeX509, Usage: KeyUsageVerify}
}

func days(n int) time.Time { return genNow.AddDate(0, 0, n) }

func thumbs(ks []Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, thumbprintOf(k))
	}
	return out
}

func TestMergeKeys(t *testing.T) {
	cases := []struct {
		name     string
		existing []Key
		add      []Key
		opts     MergeOptions
		changed  bool
		want     []string // thumbprints in order
		added    []string
		dropped  int
		rejected int
		mention  []string
	}{
		{
			name: "first key on an empty object", add: []Key{k("", derA, days(300))},
			changed: true, want: []string{tpA}, added: []string{tpA}, mention: []string{"1 key to add: " + tpA[:8]},
		},
		{
			name:     "already there, thumbprint compared case-insensitively",
			existing: []Key{{KeyID: "x", Thumbprint: strings.ToLower(tpA), End: days(300)}},
			add:      []Key{k("", derA, days(300))},
			changed:  false, want: []string{tpA}, mention: []string{"already there", "nothing to write"},
		},
		{
			name:     "thumbprint computed from DER when the field is empty",
			existing: []Key{k("x", derA, days(300))},
			add:      []Key{{Thumbprint: tpA, End: days(300)}},
			changed:  false, want: []string{tpA},
		},
		{
			name:     "the DER wins over a customKeyIdentifier set to something else",
			existing: []Key{{KeyID: "x", Thumbprint: tpB, DER: derA, End: days(300)}},
			add:      []Key{k("", derA, days(300))},
			changed:  false, want: []string{tpA},
		},
		{
			name:     "foreign unexpired keys stay, in order, before the new one",
			existing: []Key{k("f1", derB, days(10)), k("f2", derC, time.Time{})},
			add:      []Key{k("", derA, days(300))},
			changed:  true, want: []string{tpB, tpC, tpA}, added: []string{tpA},
		},
		{
			name:     "expired key dropped when the PATCH happens anyway",
			existing: []Key{k("old", derB, days(-1)), k("f", derC, days(5))},
			add:      []Key{k("", derA, days(300))},
			changed:  true, want: []string{tpC, tpA}, added: []string{tpA}, dropped: 1,
			mention: []string{"1 expired key will be dropped: " + tpB[:8], "expired on 2026-02-28"},
		},
		{
			name:     "expired key left alone when nothing else changes",
			existing: []Key{k("old", derB, days(-1)), k("ours", derA, days(300))},
			add:      []Key{k("", derA, days(300))},
			changed:  false, want: []string{tpB, tpA},
			mention: []string{"left in place", "nothing to write"},
		},
		{
			name:     "expired key dropped on its own when asked",
			existing: []Key{k("old", derB, days(-1)), k("ours", derA, days(300))},
			add:      []Key{k("", derA, days(300))},
			opts:     MergeOptions{DropExpiredWithoutAdd: true},
			changed:  true, want: []string{tpA}, dropped: 1,
		},
		{
			name:     "a key ending exactly now has not expired",
			existing: []Key{k("edge", derB, genNow)},
			add:      []Key{k("", derA, days(300))},
			changed:  true, want: []string{tpB, tpA}, added: []string{tpA},
		},
		{
			name:     "duplicates within existing: the copy valid longest stays",
			existing: []Key{k("short", derB, days(3)), k("f", derC, days(9)), k("long", derB, days(30))},
			add:      []Key{k("", derA, days(300))},
			changed:  true, want: []string{tpC, tpB, tpA}, added: []string{tpA}, dropped: 1,
			mention: []string{"second copy"},
		},
		{
			name:    "duplicates within add: one key, the latest end, at the first position",
			add:     []Key{k("a1", derA, days(100)), k("b", derB, days(50)), {Thumbprint: strings.ToLower(tpA), DER: derA, End: days(200), KeyID: "a2"}},
			changed: true, want: []string{tpA, tpB}, added: []string{tpA, tpB},
		},
		{
			name:     "an expired certificate is refused rather than uploaded",
			existing: []Key{k("f", derB, days(10))},
			add:      []Key{k("", derA, days(-2))},
			changed:  false, want: []string{tpB}, rejected: 1, mention: []string{"not adding " + tpA, "would only be dropped again"},
		},
		{
			name:    "a key with nothing to identify it by is refused",
			add:     []Key{{KeyID: "mystery", End: days(10)}},
			changed: false, rejected: 1, mention: []string{"keyId:mystery"},
		},
		{
			name:     "two certificates, current and next",
			existing: []Key{k("f", derC, days(10))},
			add:      []Key{k("", derA, days(300)), k("", derB, days(700))},
			changed:  true, want: []string{tpC, tpA, tpB}, added: []string{tpA, tpB}, mention: []string{"2 keys to add"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := MergeKeys(c.existing, c.add, genNow, c.opts)
			if d.Changed != c.changed || !slices.Equal(thumbs(d.Keys), c.want) || !slices.Equal(d.Added, c.added) ||
				len(d.Dropped) != c.dropped || len(d.Rejected) != c.rejected {
				t.Fatalf("got changed=%v keys=%v added=%v dropped=%d rejected=%d\nreason: %s",
					d.Changed, thumbs(d.Keys), d.Added, len(d.Dropped), len(d.Rejected), d.Reason)
			}
			for _, m := range c.mention {
				if !strings.Contains(d.Reason, m) {
					t.Errorf("reason %q should mention %q", d.Reason, m)
				}
			}
			for _, key := range d.Keys {
				if key.Thumbprint != thumbprintOf(key) {
					t.Errorf("thumbprint not normalised: %q", key.Thumbprint)
				}
			}
			checkMerge(t, c.existing, c.add, genNow, c.opts)
		})
	}
}

func TestMergeKeysFillsUploadFields(t *testing.T) {
	long := strings.Repeat("é", 120)
	d := MergeKeys(nil, []Key{{DER: derA, End: days(10), DisplayName: long}}, genNow, MergeOptions{})
	got := d.Keys[0]
	if got.Type != KeyTypeX509 || got.Usage != KeyUsageVerify || len([]rune(got.DisplayName)) != maxDisplayName || got.Thumbprint != tpA {
		t.Errorf("upload fields: %+v", got)
	}
}

func TestMergeKeysMissingDER(t *testing.T) {
	// Read without $select=keyCredentials: a PATCH would delete the key.
	d := MergeKeys([]Key{{KeyID: "f", Thumbprint: tpB, End: days(10)}}, []Key{k("", derA, days(300))}, genNow, MergeOptions{})
	if !d.Changed || !slices.Equal(d.MissingDER, []string{tpB}) || !strings.Contains(d.Reason, "cannot write safely") {
		t.Errorf("missing DER not flagged: %+v", d)
	}
}

func TestRemoveKeys(t *testing.T) {
	cases := []struct {
		name     string
		existing []Key
		remove   []string
		changed  bool
		want     []string
		dropped  int
		mention  string
	}{
		{"legacy key removed, foreign key kept", []Key{k("f", derB, days(10)), k("ours", derA, days(300))}, []string{strings.ToLower(tpA)},
			true, []string{tpB}, 1, "1 key to remove: " + tpA[:8]},
		{"expired keys go with it", []Key{k("old", derC, days(-5)), k("ours", derA, days(300)), k("f", derB, days(10))}, []string{tpA},
			true, []string{tpB}, 2, "will be dropped with it"},
		{"expired listed key is removed as listed", []Key{k("ours", derA, days(-5))}, []string{tpA}, true, nil, 1, "to remove"},
		{"already clean: zero writes even with an expired foreign key", []Key{k("old", derC, days(-5)), k("f", derB, days(10))}, []string{tpA},
			false, []string{tpC, tpB}, 0, "none of the keys to remove is there"},
		{"every copy of a listed certificate goes", []Key{k("a1", derA, days(3)), k("a2", derA, days(30)), k("f", derB, days(1))}, []string{tpA},
			true, []string{tpB}, 2, "2 keys to remove"},
		{"nothing listed", []Key{k("f", derB, days(1))}, nil, false, []string{tpB}, 0, "nothing to write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := RemoveKeys(c.existing, c.remove, genNow)
			if d.Changed != c.changed || !slices.Equal(thumbs(d.Keys), c.want) || len(d.Dropped) != c.dropped || !strings.Contains(d.Reason, c.mention) {
				t.Fatalf("got changed=%v keys=%v dropped=%d reason=%q", d.Changed, thumbs(d.Keys), len(d.Dropped), d.Reason)
			}
			checkRemove(t, c.existing, c.remove, genNow)
		})
	}
}

func TestUndoAdd(t *testing.T) {
	current := []Key{k("f", derB, days(10)), k("old", derC, days(-3)), k("ours", derA, days(300))}
	d := UndoAdd(current, []string{strings.ToLower(tpA)})
	if !d.Changed || !slices.Equal(thumbs(d.Keys), []string{tpB, tpC}) {
		t.Fatalf("UndoAdd: %v %s", thumbs(d.Keys), d.Reason)
	}
	// The expired key stays: undo reverses this run's own change only.
	if again := UndoAdd(d.Keys, []string{tpA}); again.Changed || !strings.Contains(again.Reason, "nothing to write") {
		t.Errorf("second undo: %+v", again)
	}
}

func TestUndoRemove(t *testing.T) {
	current := []Key{k("f", derB, days(10))}
	removed := []Key{k("ours", derA, days(300)), k("old", derC, days(-3)), k("ours-again", derA, days(300))}
	d := UndoRemove(current, removed)
	if !d.Changed || !slices.Equal(thumbs(d.Keys), []string{tpB, tpA, tpC}) {
		t.Fatalf("UndoRemove: %v %s", thumbs(d.Keys), d.Reason)
	}
	// Someone re-added A meanwhile: only C comes back.
	d = UndoRemove([]Key{k("f", derB, days(10)), k("readded", derA, days(300))}, removed)
	if !slices.Equal(thumbs(d.Keys), []string{tpB, tpA, tpC}) || !strings.Contains(d.Reason, "already back") {
		t.Fatalf("UndoRemove with A present: %v %s", thumbs(d.Keys), d.Reason)
	}
	// Keys without thumbprint are matched by keyId.
	d = UndoRemove([]Key{{KeyID: "K1"}}, []Key{{KeyID: "k1"}, {KeyID: "k2"}})
	if len(d.Keys) != 2 || d.Keys[1].KeyID != "k2" {
		t.Fatalf("keyId fallback: %+v", d.Keys)
	}
}

// --- properties ---

func TestMergeKeysProperties(t *testing.T) {
	for _, opts := range []MergeOptions{{}, {DropExpiredWithoutAdd: true}} {
		prop := func(existing, add keyList) bool {
			checkMerge(t, existing, add, genNow, opts)
			return true
		}
		if err := quick.Check(prop, &quick.Config{MaxCount: 3000}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMergeKeysOrderIndependence permutes the added keys fully, not just
// reversed as checkMerge does.
func TestMergeKeysOrderIndependence(t *testing.T) {
	prop := func(existing, add keyList, seed int64) bool {
		base := thumbSet(MergeKeys(existing, add, genNow, MergeOptions{}).Keys)
		shuffled := slices.Clone(add)
		r := newRand(seed)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := thumbSet(MergeKeys(existing, shuffled, genNow, MergeOptions{}).Keys)
		return slices.Equal(sortedKeys(base), sortedKeys(got))
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveKeysProperties(t *testing.T) {
	prop := func(existing keyList, pick uint8) bool {
		var remove []string
		for i := range derPool {
			if pick&(1<<i) != 0 {
				remove = append(remove, certs.Thumbprint(derPool[i]))
			}
		}
		checkRemove(t, existing, remove, genNow)
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 3000}); err != nil {
		t.Fatal(err)
	}
}

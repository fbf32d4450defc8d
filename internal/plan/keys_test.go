package plan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
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

// --- the legacy-key clean-up and the reset ---

// testCert is a self-signed certificate with the given subject CN: the key
// classification reads subject and thumbprint from the DER itself.
func testCert(t testing.TB, cn string, serial int64, notAfter time.Time) []byte {
	t.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.AddDate(-5, 0, 0), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pk.PublicKey, pk)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// withID is a key as read from Graph: its certificate, and the identifier
// text its uploader chose.
func withID(id string, der []byte, end time.Time, cki string) Key {
	kk := k(id, der, end)
	kk.CustomKeyIdentifier = cki
	kk.Thumbprint = certs.Thumbprint(der)
	return kk
}

func TestLegacyKeyRemovalJudgesTheCertificateInEachKey(t *testing.T) {
	current := testCert(t, ExchangeAuthCertificateCN, 1, days(900))
	from2021 := testCert(t, ExchangeAuthCertificateCN, 2, days(200)) // an earlier year's, no longer listed on-prem
	expiredAuth := testCert(t, "microsoft exchange server auth certificate", 3, days(-30))
	partner := testCert(t, "Fabrikam Partner Signing", 4, days(600))
	expiredPartner := testCert(t, "Contoso SAML", 5, days(-90))
	liar := testCert(t, "Woodgrove Integration", 6, days(400))
	existing := []Key{
		withID("p1", partner, days(600), "3q2+7wABAgP/"), // base64 of random bytes, as other apps set
		withID("cur", current, days(900), certs.Thumbprint(current)),
		withID("old", from2021, days(200), strings.ToLower(certs.Thumbprint(from2021))),
		withID("p2", expiredPartner, days(-90), certs.Thumbprint(expiredPartner)),
		withID("exp", expiredAuth, days(-30), certs.Thumbprint(expiredAuth)),
		// Its identifier names our certificate, its certificate is another:
		// the certificate decides.
		withID("liar", liar, days(400), certs.Thumbprint(current)),
	}
	d := LegacyKeyRemoval(existing, []string{strings.ToLower(certs.Thumbprint(current))}, genNow)
	if !d.Changed || len(d.MissingDER) != 0 {
		t.Fatalf("changed=%v missing=%v: %s", d.Changed, d.MissingDER, d.Reason)
	}
	var dropped []string
	for _, x := range d.Dropped {
		dropped = append(dropped, x.Key.KeyID)
	}
	if !slices.Equal(dropped, []string{"cur", "old", "exp"}) {
		t.Fatalf("dropped %v, want the three Exchange auth certificates", dropped)
	}
	if len(d.Keys) != 3 {
		t.Fatalf("kept %d keys", len(d.Keys))
	}
	// The others stay exactly as read, identifier text included; the
	// expired partner key is not ours to clean either.
	for i, want := range []Key{existing[0], existing[3], existing[5]} {
		got := d.Keys[i]
		if got.KeyID != want.KeyID || got.CustomKeyIdentifier != want.CustomKeyIdentifier || string(got.DER) != string(want.DER) ||
			!got.End.Equal(want.End) || got.DisplayName != want.DisplayName || got.Type != want.Type || got.Usage != want.Usage {
			t.Errorf("kept key %d changed: %+v, was %+v", i, got, want)
		}
	}
	for _, m := range []string{"3 keys to remove", "3 keys stay"} {
		if !strings.Contains(d.Reason, m) {
			t.Errorf("reason %q lacks %q", d.Reason, m)
		}
	}
	// An undo puts them back with their identifiers.
	u := UndoRemove(d.Keys, droppedKeysOf(d))
	if len(u.Keys) != 6 || u.Keys[4].CustomKeyIdentifier != strings.ToLower(certs.Thumbprint(from2021)) {
		t.Fatalf("undo: %+v", u.Keys)
	}
}

func droppedKeysOf(d KeyDecision) []Key {
	var out []Key
	for _, x := range d.Dropped {
		out = append(out, x.Key)
	}
	return out
}

func TestLegacyKeyRemovalCases(t *testing.T) {
	auth := testCert(t, ExchangeAuthCertificateCN, 1, days(900))
	custom := testCert(t, "mail.contoso.com", 2, days(900)) // an auth certificate the admin chose, listed by Get-AuthConfig
	partner := testCert(t, "Fabrikam Partner Signing", 3, days(600))
	expiredPartner := testCert(t, "Contoso SAML", 4, days(-90))
	cases := []struct {
		name     string
		existing []Key
		ours     []string
		changed  bool
		keep     []string // keyIds
		missing  int
		mention  string
	}{
		{"no Exchange auth certificate: zero writes, the expired foreign key stays",
			[]Key{withID("p", partner, days(600), "AAEC"), withID("x", expiredPartner, days(-90), "")}, []string{certs.Thumbprint(auth)},
			false, []string{"p", "x"}, 0, "nothing to write"},
		{"an auth certificate of another subject is removed when the organisation lists it",
			[]Key{withID("c", custom, days(900), certs.Thumbprint(custom)), withID("p", partner, days(600), "")}, []string{certs.Thumbprint(custom)},
			true, []string{"p"}, 0, "1 key to remove"},
		{"the same certificate unlisted and not an Exchange auth certificate stays",
			[]Key{withID("c", custom, days(900), certs.Thumbprint(custom))}, nil,
			false, []string{"c"}, 0, "nothing to write"},
		{"an Exchange auth certificate goes even when nothing is listed",
			[]Key{withID("a", auth, days(900), certs.Thumbprint(auth))}, nil,
			true, nil, 0, "1 key to remove"},
		{"read without certificates: named by its identifier, it cannot be written",
			[]Key{{KeyID: "a", Thumbprint: certs.Thumbprint(auth), CustomKeyIdentifier: certs.Thumbprint(auth), End: days(900)}, {KeyID: "p", CustomKeyIdentifier: "AAEC", End: days(600)}},
			[]string{certs.Thumbprint(auth)}, true, []string{"p"}, 2, "cannot write safely"},
		{"empty", nil, []string{certs.Thumbprint(auth)}, false, nil, 0, "nothing to write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := LegacyKeyRemoval(c.existing, c.ours, genNow)
			var keep []string
			for _, x := range d.Keys {
				keep = append(keep, x.KeyID)
			}
			if d.Changed != c.changed || !slices.Equal(keep, c.keep) || len(d.MissingDER) != c.missing || !strings.Contains(d.Reason, c.mention) {
				t.Fatalf("changed=%v keep=%v missing=%v reason=%q", d.Changed, keep, d.MissingDER, d.Reason)
			}
		})
	}
}

// TestLegacyKeyRemovalNeverDropsOtherKeys: whatever the collection and the
// list, a key whose certificate is neither an Exchange auth certificate
// nor listed stays, byte for byte, and the decision keeps the order.
func TestLegacyKeyRemovalNeverDropsOtherKeys(t *testing.T) {
	pool := [][]byte{
		testCert(t, ExchangeAuthCertificateCN, 1, days(900)),
		testCert(t, ExchangeAuthCertificateCN, 2, days(-10)),
		testCert(t, "Fabrikam", 3, days(600)),
		testCert(t, "Contoso SAML", 4, days(-90)),
		testCert(t, "Woodgrove", 5, days(30)),
	}
	prop := func(picks []uint8, listMask uint8) bool {
		var existing []Key
		for i, p := range picks {
			der := pool[int(p)%len(pool)]
			existing = append(existing, withID(fmt.Sprintf("k%d", i), der, days(int(p)-128), fmt.Sprintf("AA%02X", p)))
		}
		var ours []string
		for i, der := range pool {
			if listMask&(1<<i) != 0 {
				ours = append(ours, certs.Thumbprint(der))
			}
		}
		d := LegacyKeyRemoval(existing, ours, genNow)
		var kept []Key
		for _, x := range existing {
			if !IsExchangeAuthCertificate(x.DER) && !slices.Contains(ours, certs.Thumbprint(x.DER)) {
				kept = append(kept, x)
			}
		}
		if d.Changed != (len(kept) < len(existing)) || len(d.Keys) != len(kept) || len(d.Dropped)+len(d.Keys) != len(existing) {
			return false
		}
		for i := range kept {
			if d.Keys[i].KeyID != kept[i].KeyID || d.Keys[i].CustomKeyIdentifier != kept[i].CustomKeyIdentifier || string(d.Keys[i].DER) != string(kept[i].DER) {
				return false
			}
		}
		return true
	}
	if err := quick.Check(prop, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

func TestResetKeysRemovesEveryKey(t *testing.T) {
	existing := []Key{withID("p", testCert(t, "Fabrikam", 1, days(600)), days(600), "3q2+7w=="), withID("a", testCert(t, ExchangeAuthCertificateCN, 2, days(900)), days(900), "")}
	d := ResetKeys(existing)
	if !d.Changed || d.Keys == nil || len(d.Keys) != 0 || len(d.Dropped) != 2 || d.Dropped[0].Key.CustomKeyIdentifier != "3q2+7w==" || !strings.Contains(d.Reason, "every key") {
		t.Fatalf("%+v", d)
	}
	if d := ResetKeys(nil); d.Changed || !strings.Contains(d.Reason, "nothing to write") {
		t.Fatalf("empty: %+v", d)
	}
}

// TestMergeKeysKeepsIdentifiers: a merge sends every kept key back with
// the identifier text Graph returned, and gives a new key its hex
// thumbprint (shared/reference/graph-entities.tsv NOTE "customKeyIdentifier
// wire form").
func TestMergeKeysKeepsIdentifiers(t *testing.T) {
	existing := []Key{withID("f", derB, days(300), "3q2+7wABAgP/"), withID("p", derC, days(300), strings.ToLower(tpC))}
	d := MergeKeys(existing, []Key{k("", derA, days(300))}, genNow, MergeOptions{})
	if !d.Changed || len(d.Keys) != 3 {
		t.Fatalf("%+v", d)
	}
	if d.Keys[0].CustomKeyIdentifier != "3q2+7wABAgP/" || d.Keys[1].CustomKeyIdentifier != strings.ToLower(tpC) || d.Keys[2].CustomKeyIdentifier != tpA {
		t.Fatalf("identifiers %q %q %q", d.Keys[0].CustomKeyIdentifier, d.Keys[1].CustomKeyIdentifier, d.Keys[2].CustomKeyIdentifier)
	}
}

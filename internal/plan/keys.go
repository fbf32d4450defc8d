package plan

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// Key credential type and usage of an uploaded certificate.
const (
	KeyTypeX509    = "AsymmetricX509Cert"
	KeyUsageVerify = "Verify"
)

// maxDisplayName is Graph's limit on a key credential's displayName; a
// longer one fails the whole PATCH, not just that key.
const maxDisplayName = 90

// Key is one key credential of an application or service principal.
// Thumbprint is the upper-case hex SHA-1 of DER (or, for a key read
// without its certificate, its customKeyIdentifier when that is a hex
// thumbprint). DER is the certificate's public part: Graph returns it only
// to a single-object read with $select=keyCredentials, and a PATCH must
// re-send it for every key it keeps.
//
// CustomKeyIdentifier is Graph's customKeyIdentifier exactly as read (its
// base64 text; for certificates usually the hex thumbprint), sent back
// unchanged for every key kept or restored, so no key of another
// application has its identifier rewritten. A key to add may leave it
// empty: the decisions here give it the thumbprint.
type Key struct {
	KeyID               string    `json:"key_id,omitempty"`
	Thumbprint          string    `json:"thumbprint,omitempty"`
	CustomKeyIdentifier string    `json:"custom_key_identifier,omitempty"`
	DisplayName         string    `json:"display_name,omitempty"`
	Type                string    `json:"type,omitempty"`
	Usage               string    `json:"usage,omitempty"`
	Start               time.Time `json:"start"`
	End                 time.Time `json:"end"`
	DER                 []byte    `json:"der,omitempty"`
}

// Dropped is a key a decision leaves out, with why. Key is the whole
// credential so that an undo can put it back (UndoRemove).
type Dropped struct {
	Thumbprint string `json:"thumbprint"`
	Reason     string `json:"reason"`
	Key        Key    `json:"key"`
}

// KeyDecision is the keyCredentials collection to write and why.
//
// Changed=false means the caller must not PATCH: Keys is then the existing
// collection, unchanged apart from normalised thumbprints. When Changed is
// true, Keys is the whole collection to send (Graph replaces it).
type KeyDecision struct {
	Keys    []Key     `json:"keys"`
	Changed bool      `json:"changed"`
	Added   []string  `json:"added,omitempty"`   // thumbprints this decision adds
	Dropped []Dropped `json:"dropped,omitempty"` // keys this decision leaves out
	// Kept lists the thumbprints of existing keys that stay, or keyId:<id>
	// for the rare key that has neither thumbprint nor certificate.
	Kept []string `json:"kept,omitempty"`
	// Rejected lists keys asked for that were not added (expired, or with
	// nothing to identify them by).
	Rejected []Dropped `json:"rejected,omitempty"`
	// MissingDER names keys in Keys without certificate bytes. A PATCH
	// without them would delete those keys, so a caller must re-read with
	// $select=keyCredentials instead of writing while this is non-empty.
	MissingDER []string `json:"missing_der,omitempty"`
	Reason     string   `json:"reason"`
}

// MergeOptions tunes MergeKeys.
type MergeOptions struct {
	// DropExpiredWithoutAdd lets housekeeping alone (expired keys, second
	// copies of a certificate) justify a PATCH. Off by default: a converged
	// tenant must cost zero writes, and an expired key on an object we
	// otherwise leave alone is not ours to clean. With it off, housekeeping
	// rides along only with a PATCH made to add a key.
	DropExpiredWithoutAdd bool `json:"drop_expired_without_add,omitempty"`
}

// MergeKeys decides the collection that results from uploading add to an
// object holding existing (the read-merge-write that a whole-collection
// PATCH demands, as Microsoft's own upload scripts do it):
//
//   - every existing key that has not expired stays, ours or not, in its
//     original order; keys come first, then the added ones in add's order;
//   - a key in add is added only if no unexpired existing key has its
//     thumbprint (case-insensitive); add is deduplicated too;
//   - of two keys with one thumbprint, the one valid longest stays;
//   - expired keys and extra copies are dropped only when the PATCH
//     happens anyway, or when opts.DropExpiredWithoutAdd is set;
//   - an expired key in add is refused: the next merge would drop it again.
//
// A key is expired when End is before now. End == now is still valid (an
// X.509 notAfter is inclusive) and a zero End is unknown, never expired:
// dropping a foreign key on a guess is the one mistake this must not make.
//
// A full undo of a merge is UndoAdd(Added) followed by UndoRemove of the
// Dropped keys.
func MergeKeys(existing []Key, add []Key, now time.Time, opts MergeOptions) KeyDecision {
	ex := classify(existing, now)
	present := make(map[string]bool, len(existing))
	for i := range ex.keys {
		if ex.fate[i] == keep && ex.tps[i] != "" {
			present[ex.tps[i]] = true
		}
	}

	cands := bestByThumbprint(add)
	var (
		toAdd    []Key
		added    []string
		already  []string
		rejected []Dropped
	)
	for _, c := range cands {
		switch {
		case c.tp == "":
			rejected = append(rejected, Dropped{Reason: "it has neither a thumbprint nor a certificate to compare with the keys already there", Key: c.key})
		case expiredAt(c.key, now):
			rejected = append(rejected, Dropped{Thumbprint: c.tp, Reason: "it expired on " + day(c.key.End) + " and would only be dropped again", Key: c.key})
		case present[c.tp]:
			already = append(already, c.tp)
		default:
			toAdd = append(toAdd, newKey(c.key, c.tp))
			added = append(added, c.tp)
		}
	}

	exp, dup := ex.dropped()
	housekeeping := append(exp, dup...)
	d := KeyDecision{
		Changed:  len(toAdd) > 0 || (opts.DropExpiredWithoutAdd && len(housekeeping) > 0),
		Rejected: rejected,
	}
	if d.Changed {
		d.Keys, d.Kept = ex.kept()
		d.Keys = append(d.Keys, toAdd...)
		d.Added = added
		d.Dropped = housekeeping
		d.MissingDER = missingDER(d.Keys)
	} else {
		d.Keys, d.Kept = ex.all()
	}

	var parts []string
	if len(added) > 0 {
		parts = append(parts, countf(len(added), "key", "keys")+" to add: "+shortList(added))
	}
	if len(already) > 0 {
		parts = append(parts, countf(len(already), "certificate is", "certificates are")+" already there: "+shortList(already))
	}
	if len(housekeeping) > 0 {
		if d.Changed {
			parts = append(parts, describeDropped(exp, dup, "will be dropped"))
		} else {
			parts = append(parts, describeDropped(exp, dup, "left in place, since it alone is not worth a write"))
		}
	}
	for _, r := range rejected {
		parts = append(parts, "not adding "+labelOr(r.Thumbprint, r.Key)+": "+r.Reason)
	}
	if len(d.MissingDER) > 0 {
		parts = append(parts, "cannot write safely: "+countf(len(d.MissingDER), "key has", "keys have")+" no certificate bytes ("+shortList(d.MissingDER)+"); re-read keyCredentials with $select")
	}
	if !d.Changed {
		parts = append(parts, "nothing to write")
	}
	d.Reason = strings.Join(parts, "; ")
	return d
}

// RemoveKeys decides the collection without the keys listed in remove
// (thumbprints, case-insensitive), as Microsoft's
// Remove-CertificateFromAzureServicePrincipal does for one thumbprint.
// Every other unexpired key stays. Expired keys and extra copies go too,
// but only together with a listed key: a clean-up whose keys are already
// gone must cost zero writes, like a converged merge. The first-party
// legacy clean-up uses LegacyKeyRemoval instead, which never drops a key
// that is not an Exchange auth certificate.
func RemoveKeys(existing []Key, remove []string, now time.Time) KeyDecision {
	want := make(map[string]bool, len(remove))
	for _, r := range remove {
		if t := normThumbprint(r); t != "" {
			want[t] = true
		}
	}
	ex := classify(existing, now)
	var listed []Dropped
	for i, k := range ex.keys {
		if want[ex.tps[i]] {
			listed = append(listed, Dropped{Thumbprint: ex.tps[i], Reason: "listed for removal", Key: k})
			ex.fate[i] = removed
		}
	}
	exp, dup := ex.dropped()
	housekeeping := append(exp, dup...)
	d := KeyDecision{Changed: len(listed) > 0}
	if !d.Changed {
		d.Keys, d.Kept = ex.all()
		var parts []string
		if len(want) > 0 {
			parts = append(parts, "none of the keys to remove is there ("+shortList(sortedKeys(want))+")")
		}
		if len(housekeeping) > 0 {
			parts = append(parts, describeDropped(exp, dup, "left in place, since it alone is not worth a write"))
		}
		d.Reason = strings.Join(append(parts, "nothing to write"), "; ")
		return d
	}
	d.Keys, d.Kept = ex.kept()
	d.Dropped = append(listed, housekeeping...)
	d.MissingDER = missingDER(d.Keys)
	tps := make([]string, 0, len(listed))
	for _, l := range listed {
		tps = append(tps, l.Thumbprint)
	}
	parts := []string{countf(len(listed), "key", "keys") + " to remove: " + shortList(tps)}
	if len(housekeeping) > 0 {
		parts = append(parts, describeDropped(exp, dup, "will be dropped with it"))
	}
	parts = append(parts, countf(len(d.Keys), "key stays", "keys stay"))
	if len(d.MissingDER) > 0 {
		parts = append(parts, "cannot write safely: "+countf(len(d.MissingDER), "key has", "keys have")+" no certificate bytes ("+shortList(d.MissingDER)+"); re-read keyCredentials with $select")
	}
	d.Reason = strings.Join(parts, "; ")
	return d
}

// ExchangeAuthCertificateCN is the subject common name Exchange gives its
// OAuth auth certificates (New-ExchangeCertificate -SubjectName
// "cn=Microsoft Exchange Server Auth Certificate", by Setup, the Hybrid
// Configuration Wizard and Microsoft's renewal script alike).
const ExchangeAuthCertificateCN = "Microsoft Exchange Server Auth Certificate"

// IsExchangeAuthCertificate reports whether der is a certificate whose
// subject common name is ExchangeAuthCertificateCN (case-insensitive).
func IsExchangeAuthCertificate(der []byte) bool {
	c, err := x509.ParseCertificate(der)
	return err == nil && strings.EqualFold(strings.TrimSpace(c.Subject.CommonName), ExchangeAuthCertificateCN)
}

// LegacyKeyRemoval decides the legacy-key clean-up of the shared
// first-party service principal once the dedicated application carries the
// trust: every key whose certificate is one of the organisation's auth
// certificates (ours: thumbprints from Get-AuthConfig and the certificate
// store) or is an Exchange auth certificate at all (subject
// ExchangeAuthCertificateCN, which finds the ones uploaded in earlier years
// that the organisation no longer lists) goes; every other key stays
// exactly as read, expired or not, since keys of other applications are
// not ours to clean.
//
// Keys are judged by the certificate each carries (thumbprint and subject
// from its DER), never by customKeyIdentifier, which any client may set. A
// key read without its certificate cannot be judged: when its identifier
// names one of ours it counts as one to remove, and MissingDER then says
// the collection must be read again with its certificates before writing.
// Expired Exchange auth certificates go like the others; a tenant with no
// auth certificate on the service principal costs zero writes.
func LegacyKeyRemoval(existing []Key, ours []string, now time.Time) KeyDecision {
	want := make(map[string]bool, len(ours))
	for _, r := range ours {
		if t := normThumbprint(r); t != "" {
			want[t] = true
		}
	}
	d := KeyDecision{}
	var gone, unproven []string
	for _, k := range existing {
		tp := thumbprintOf(k)
		k.Thumbprint = tp
		why := ""
		switch {
		case len(k.DER) > 0 && want[tp]:
			why = "one of the organisation's auth certificates"
		case len(k.DER) > 0 && IsExchangeAuthCertificate(k.DER):
			why = "an Exchange auth certificate (CN=" + ExchangeAuthCertificateCN + ", valid until " + day(certEnd(k)) + ") the organisation no longer lists, uploaded earlier"
			if expiredAt(k, now) {
				why = "an expired Exchange auth certificate (CN=" + ExchangeAuthCertificateCN + ", expired " + day(certEnd(k)) + ")"
			}
		case len(k.DER) == 0 && want[tp]:
			why = "named by its customKeyIdentifier as one of the organisation's auth certificates; its certificate was not read"
			unproven = append(unproven, label(k, tp))
		}
		if why == "" {
			d.Keys = append(d.Keys, k)
			d.Kept = append(d.Kept, label(k, tp))
			continue
		}
		d.Dropped = append(d.Dropped, Dropped{Thumbprint: tp, Reason: why, Key: k})
		gone = append(gone, label(k, tp))
	}
	d.Changed = len(d.Dropped) > 0
	if !d.Changed {
		d.Keys, d.Kept = normalised(existing), labels(existing)
		d.Reason = fmt.Sprintf("none of the %s is an Exchange auth certificate or one of the organisation's (%s); nothing to write",
			countf(len(existing), "key", "keys"), orNoneList(sortedKeys(want)))
		return d
	}
	d.MissingDER = append(missingDER(d.Keys), unproven...)
	parts := []string{countf(len(gone), "key", "keys") + " to remove, Exchange auth certificates: " + shortList(gone),
		countf(len(d.Keys), "key stays", "keys stay") + " untouched (not Exchange auth certificates)"}
	if len(d.MissingDER) > 0 {
		parts = append(parts, "cannot write safely: "+countf(len(d.MissingDER), "key has", "keys have")+" no certificate bytes ("+shortList(d.MissingDER)+"); re-read keyCredentials with $select")
	}
	d.Reason = strings.Join(parts, "; ")
	return d
}

// ResetKeys decides an empty collection: every key goes, whoever uploaded
// it. It is what Microsoft's ConfigureExchangeHybridApplication.ps1
// -ResetFirstPartyServicePrincipalKeyCredentials does to the first-party
// service principal (PATCH keyCredentials []) and is only ever run when the
// operator asked for exactly that; the dropped keys are kept for an undo.
func ResetKeys(existing []Key) KeyDecision {
	d := KeyDecision{Keys: []Key{}, Changed: len(existing) > 0}
	if !d.Changed {
		d.Reason = "the service principal has no keys; nothing to write"
		return d
	}
	var gone []string
	for _, k := range existing {
		tp := thumbprintOf(k)
		k.Thumbprint = tp
		d.Dropped = append(d.Dropped, Dropped{Thumbprint: tp, Reason: "every key is removed, as the operator asked", Key: k})
		gone = append(gone, label(k, tp))
	}
	d.Reason = "every key goes, whoever uploaded it: " + countf(len(gone), "key", "keys") + " (" + shortList(gone) + ")"
	return d
}

// certEnd is the key's end date, else its certificate's.
func certEnd(k Key) time.Time {
	if !k.End.IsZero() {
		return k.End
	}
	if c, err := x509.ParseCertificate(k.DER); err == nil {
		return c.NotAfter.UTC()
	}
	return time.Time{}
}

func normalised(ks []Key) []Key {
	out := make([]Key, 0, len(ks))
	for _, k := range ks {
		k.Thumbprint = thumbprintOf(k)
		out = append(out, k)
	}
	return out
}

func labels(ks []Key) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, label(k, thumbprintOf(k)))
	}
	return out
}

func orNoneList(s []string) string {
	if len(s) == 0 {
		return "none listed"
	}
	return shortList(s)
}

// UndoAdd removes exactly the keys a run added (their thumbprints) and
// nothing else: compensation reverses this run's changes only, so it
// neither drops expired keys nor touches keys someone else added since.
func UndoAdd(current []Key, added []string) KeyDecision {
	want := make(map[string]bool, len(added))
	for _, a := range added {
		if t := normThumbprint(a); t != "" {
			want[t] = true
		}
	}
	d := KeyDecision{}
	var gone []string
	for _, k := range current {
		tp := thumbprintOf(k)
		k.Thumbprint = tp
		if tp != "" && want[tp] {
			d.Dropped = append(d.Dropped, Dropped{Thumbprint: tp, Reason: "added by this run", Key: k})
			gone = append(gone, tp)
			continue
		}
		d.Keys = append(d.Keys, k)
		d.Kept = append(d.Kept, label(k, tp))
	}
	d.Changed = len(d.Dropped) > 0
	if d.Changed {
		d.MissingDER = missingDER(d.Keys)
		d.Reason = countf(len(gone), "key", "keys") + " this run added will be removed: " + shortList(gone)
	} else {
		d.Reason = "none of the keys this run added is still there; nothing to write"
	}
	return d
}

// UndoRemove puts back exactly the keys a run removed, unless a key with
// the same thumbprint is already there again (someone re-added it, or the
// undo runs twice). A key without thumbprint or certificate is matched by
// its keyId; one with nothing at all to match is put back, since this run
// removed it and nothing can show it has returned.
func UndoRemove(current []Key, removed []Key) KeyDecision {
	have := make(map[string]bool, len(current))
	d := KeyDecision{}
	for _, k := range current {
		id := identity(k)
		if id != "" {
			have[id] = true
		}
		k.Thumbprint = thumbprintOf(k)
		d.Keys = append(d.Keys, k)
		d.Kept = append(d.Kept, label(k, k.Thumbprint))
	}
	var back, skipped []string
	for _, k := range removed {
		id := identity(k)
		if id != "" && have[id] {
			skipped = append(skipped, label(k, thumbprintOf(k)))
			continue
		}
		if id != "" {
			have[id] = true
		}
		k.Thumbprint = thumbprintOf(k)
		d.Keys = append(d.Keys, k)
		d.Added = append(d.Added, label(k, k.Thumbprint))
		back = append(back, label(k, k.Thumbprint))
	}
	d.Changed = len(back) > 0
	var parts []string
	if d.Changed {
		parts = append(parts, countf(len(back), "removed key", "removed keys")+" will be put back: "+shortList(back))
		d.MissingDER = missingDER(d.Keys)
	}
	if len(skipped) > 0 {
		parts = append(parts, countf(len(skipped), "key is", "keys are")+" already back: "+shortList(skipped))
	}
	if !d.Changed {
		parts = append(parts, "nothing to write")
	}
	d.Reason = strings.Join(parts, "; ")
	return d
}

// --- classification shared by the decisions above ---

type fate uint8

const (
	keep fate = iota
	expired
	duplicate
	removed // set by RemoveKeys
)

// classified is existing keys with their thumbprints and what a write
// would do with each.
type classified struct {
	keys []Key
	tps  []string
	fate []fate
	// winner[i] is the index of the copy that stays for a duplicate.
	winner []int
}

// classify marks expired keys and, for each thumbprint, every copy but the
// one valid longest (the first of equals, so the result is stable).
func classify(existing []Key, now time.Time) classified {
	c := classified{
		keys:   existing,
		tps:    make([]string, len(existing)),
		fate:   make([]fate, len(existing)),
		winner: make([]int, len(existing)),
	}
	best := make(map[string]int, len(existing))
	for i, k := range existing {
		c.tps[i] = thumbprintOf(k)
		c.winner[i] = i
		if expiredAt(k, now) {
			c.fate[i] = expired
			continue
		}
		if c.tps[i] == "" {
			continue
		}
		j, seen := best[c.tps[i]]
		switch {
		case !seen:
			best[c.tps[i]] = i
		case longer(k, existing[j]):
			c.fate[j], c.winner[j] = duplicate, i
			best[c.tps[i]] = i
		default:
			c.fate[i], c.winner[i] = duplicate, j
		}
	}
	// A loser may have pointed at a copy that lost later; point every
	// duplicate at the final winner so its reason names the right one.
	for i := range c.fate {
		if c.fate[i] == duplicate {
			c.winner[i] = best[c.tps[i]]
		}
	}
	return c
}

// dropped is what a write would leave out besides listed keys: expired
// keys and extra copies, apart so reasons can count each kind.
func (c classified) dropped() (exp, dup []Dropped) {
	for i, k := range c.keys {
		switch c.fate[i] {
		case expired:
			exp = append(exp, Dropped{Thumbprint: c.tps[i], Reason: "expired on " + day(k.End), Key: k})
		case duplicate:
			w := c.keys[c.winner[i]]
			dup = append(dup, Dropped{Thumbprint: c.tps[i], Reason: "second copy of a certificate; the copy valid until " + day(w.End) + " stays", Key: k})
		}
	}
	return exp, dup
}

func (c classified) kept() ([]Key, []string) {
	var keys []Key
	var labels []string
	for i, k := range c.keys {
		if c.fate[i] == keep {
			k.Thumbprint = c.tps[i]
			keys = append(keys, k)
			labels = append(labels, label(k, c.tps[i]))
		}
	}
	return keys, labels
}

func (c classified) all() ([]Key, []string) {
	keys := make([]Key, 0, len(c.keys))
	labels := make([]string, 0, len(c.keys))
	for i, k := range c.keys {
		k.Thumbprint = c.tps[i]
		keys = append(keys, k)
		labels = append(labels, label(k, c.tps[i]))
	}
	return keys, labels
}

type candidate struct {
	key Key
	tp  string
}

// bestByThumbprint collapses keys sharing a thumbprint into the one valid
// longest, placed where the thumbprint first appears so the caller's order
// of certificates is what the collection shows.
func bestByThumbprint(keys []Key) []candidate {
	out := make([]candidate, 0, len(keys))
	at := make(map[string]int, len(keys))
	for _, k := range keys {
		tp := thumbprintOf(k)
		if tp == "" {
			out = append(out, candidate{k, ""})
			continue
		}
		if i, ok := at[tp]; ok {
			if longer(k, out[i].key) {
				out[i].key = k
			}
			continue
		}
		at[tp] = len(out)
		out = append(out, candidate{k, tp})
	}
	return out
}

// newKey fills what Graph needs for an upload the caller may have left
// out, and only for keys we add: a foreign key's type, usage and
// identifier are its owner's business. The identifier of a new key is its
// hex thumbprint, the value Graph gives a certificate key by default.
func newKey(k Key, tp string) Key {
	k.Thumbprint = tp
	if k.CustomKeyIdentifier == "" {
		k.CustomKeyIdentifier = tp
	}
	if k.Type == "" {
		k.Type = KeyTypeX509
	}
	if k.Usage == "" {
		k.Usage = KeyUsageVerify
	}
	if r := []rune(k.DisplayName); len(r) > maxDisplayName {
		k.DisplayName = string(r[:maxDisplayName])
	}
	return k
}

// thumbprintOf identifies a key by its certificate when it has one: the
// thumbprint field mirrors customKeyIdentifier, which the uploader may have
// set to anything, whereas the SHA-1 of the DER is what Windows and
// Get-AuthConfig call the certificate's thumbprint.
func thumbprintOf(k Key) string {
	if len(k.DER) > 0 {
		return certs.Thumbprint(k.DER)
	}
	return normThumbprint(k.Thumbprint)
}

// normThumbprint drops whitespace and invisible format characters: a
// thumbprint copied from the Windows certificate dialog carries a leading
// U+200E that would otherwise make the same certificate look different.
func normThumbprint(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s))
}

// identity is the thumbprint, or the keyId when there is none; only
// UndoRemove needs the fallback, to avoid restoring a key twice.
func identity(k Key) string {
	if tp := thumbprintOf(k); tp != "" {
		return tp
	}
	if k.KeyID != "" {
		return "keyId:" + strings.ToLower(k.KeyID)
	}
	return ""
}

func label(k Key, tp string) string {
	if tp != "" {
		return tp
	}
	if k.KeyID != "" {
		return "keyId:" + k.KeyID
	}
	return "(key without thumbprint or keyId)"
}

func labelOr(tp string, k Key) string { return label(k, tp) }

func expiredAt(k Key, now time.Time) bool { return !k.End.IsZero() && k.End.Before(now) }

// longer prefers the copy that stays valid longer. A zero End ranks as
// never ending, as it counts as never expired: ranking it lower would let
// a known-expired copy beat it and refuse a key the rules call valid.
func longer(a, b Key) bool {
	if a.End.IsZero() || b.End.IsZero() {
		return a.End.IsZero() && !b.End.IsZero()
	}
	return a.End.After(b.End)
}

func missingDER(keys []Key) []string {
	var out []string
	for _, k := range keys {
		if len(k.DER) == 0 {
			out = append(out, label(k, k.Thumbprint))
		}
	}
	return out
}

func describeDropped(exp, dup []Dropped, verb string) string {
	var parts []string
	if len(exp) > 0 {
		items := make([]string, len(exp))
		for i, d := range exp {
			items[i] = short(labelOr(d.Thumbprint, d.Key)) + " (" + d.Reason + ")"
		}
		parts = append(parts, countf(len(exp), "expired key", "expired keys")+" "+verb+": "+strings.Join(items, ", "))
	}
	if len(dup) > 0 {
		items := make([]string, len(dup))
		for i, d := range dup {
			items[i] = short(labelOr(d.Thumbprint, d.Key))
		}
		parts = append(parts, countf(len(dup), "second copy of a certificate", "second copies of certificates")+" "+verb+": "+strings.Join(items, ", "))
	}
	return strings.Join(parts, "; ")
}

func day(t time.Time) string {
	if t.IsZero() {
		return "an unknown date"
	}
	return t.UTC().Format(time.DateOnly)
}

// short abbreviates a thumbprint: eight hex digits identify a certificate
// among the handful on one object and keep reasons readable.
func short(tp string) string {
	if len(tp) == 40 {
		return tp[:8] + "…"
	}
	return tp
}

func shortList(tps []string) string {
	out := make([]string, len(tps))
	for i, t := range tps {
		out[i] = short(t)
	}
	return strings.Join(out, ", ")
}

func countf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

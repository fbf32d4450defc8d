package plan

// The renewal's decision: what one run of the Renewal workflow does with
// the auth certificate it read. Like the setup's plan it is a chain of
// small policies, each returning its decision with a reason; the first
// that applies wins. The clock is an argument (RenewalFacts.Now), so the
// workflow can evaluate the chain in a local activity and keep the answer
// in its history: a later release with other thresholds never changes
// what a sleeping renewal already decided. The certificate facts behind
// the thresholds are in docs/microsoft-behaviour.md, "The auth
// certificate's life".

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// Renewal defaults (Microsoft's monitoring script stages a new certificate
// 30 days ahead).
const (
	DefaultRenewalWindow      = 60 * 24 * time.Hour
	DefaultRenewalLeadTime    = 30 * 24 * time.Hour
	DefaultEmergencyThreshold = 24 * time.Hour
)

// What a renewal run decided (RenewalDecision.Action).
const (
	RenewalActionNone      = "none"      // far from expiry: nothing to do
	RenewalActionRenew     = "renew"     // create, stage, upload, wait, publish, clean up
	RenewalActionResume    = "resume"    // carry a certificate already staged through
	RenewalActionFinish    = "finish"    // finish the clean-up of a published certificate
	RenewalActionEmergency = "emergency" // the current certificate expired or is about to
)

// Which policy decided, and on what ground (RenewalDecision.Policy): a
// stable word for tests, logs and dashboards; Reason is the sentence.
const (
	RenewalNoCurrent          = "NoCurrentCertificate"     // Get-AuthConfig names none
	RenewalCurrentNotInStore  = "CurrentNotInStore"        // named, but not in the certificate store
	RenewalCurrentExpired     = "CurrentExpired"           // past its NotAfter
	RenewalWithinEmergency    = "WithinEmergencyThreshold" // expires within the emergency threshold
	RenewalStagedBeyondWindow = "StagedBeyondWindow"       // a usable staged certificate, effective after the window
	RenewalStaged             = "StagedWithinWindow"       // a usable staged certificate to carry through
	RenewalWithinWindow       = "WithinRenewalWindow"      // the current certificate expires within the window
	RenewalCleanupPending     = "CleanupPending"           // a previous certificate or retired keys remain
	RenewalNotDue             = "NotDue"                   // nothing to do
)

// RenewalCertificate is one auth certificate as the decision needs it:
// its validity and whether its key can be used (exportable, with its
// public part read).
type RenewalCertificate struct {
	Thumbprint string    `json:"thumbprint"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	Exportable bool      `json:"exportable,omitempty"`
	// HasDER: the certificate's public part was read (it can be uploaded).
	HasDER bool `json:"has_der,omitempty"`
}

// ValidAt reports whether the certificate is within its validity at t
// (notBefore and notAfter inclusive, as X.509 has them).
func (c RenewalCertificate) ValidAt(t time.Time) bool {
	return !t.Before(c.NotBefore) && !t.After(c.NotAfter)
}

// RenewalFacts is everything a renewal's decision reads: the clock, the
// run's thresholds (zero takes the default), Get-AuthConfig's current,
// next and previous certificates, the certificate store, and which
// retired certificates still have a key on the Entra object.
type RenewalFacts struct {
	Now                time.Time     `json:"now"`
	Window             time.Duration `json:"window,omitempty"`
	LeadTime           time.Duration `json:"lead_time,omitempty"`
	EmergencyThreshold time.Duration `json:"emergency_threshold,omitempty"`

	Current       string               `json:"current,omitempty"`
	Next          string               `json:"next,omitempty"`
	NextEffective time.Time            `json:"next_effective,omitempty"`
	Previous      string               `json:"previous,omitempty"`
	Certificates  []RenewalCertificate `json:"certificates,omitempty"`
	// Retired are the out-of-service certificates, sorted; EntraKeys the
	// thumbprints of the keys on the Entra object the mode uses.
	Retired   []string `json:"retired,omitempty"`
	EntraKeys []string `json:"entra_keys,omitempty"`
}

// Certificate returns the certificate with this thumbprint, if read.
func (f RenewalFacts) Certificate(thumbprint string) (RenewalCertificate, bool) {
	for _, c := range f.Certificates {
		if certs.SameThumbprint(c.Thumbprint, thumbprint) {
			return c, true
		}
	}
	return RenewalCertificate{}, false
}

// RenewalDecision is one run's plan, decided from what the read step
// found.
type RenewalDecision struct {
	Action string `json:"action"`
	Policy string `json:"policy"`
	Reason string `json:"reason"`
	// Emergency: the current certificate is gone, expired or about to.
	Emergency bool `json:"emergency,omitempty"`
	// Create (or reuse a spare) and stage a successor effective at
	// Effective; it must outlive Outlive (the current certificate).
	Create bool `json:"create,omitempty"`
	// Replace: an unusable staged certificate the new one replaces.
	Replace string `json:"replace,omitempty"`
	// Staged: the thumbprint of a usable staged certificate carried through.
	Staged    string    `json:"staged,omitempty"`
	Effective time.Time `json:"effective,omitempty"`
	Wait      bool      `json:"wait,omitempty"`
	Publish   bool      `json:"publish,omitempty"`
	// StagedLater: staged beyond the window: upload its key and leave the
	// publishing to a later run.
	StagedLater bool      `json:"staged_later,omitempty"`
	Outlive     time.Time `json:"outlive,omitempty"`
}

// renewalView is the facts with what every policy looks at worked out.
type renewalView struct {
	f      RenewalFacts
	cur    RenewalCertificate
	hasCur bool
	// staged is a usable staged certificate (nil: none).
	staged         *RenewalCertificate
	retiredInEntra []string
	daysLeft       int
}

// renewalPolicy decides, or passes (ok false) to the next policy.
type renewalPolicy func(v renewalView) (d RenewalDecision, ok bool)

// renewalChain: an emergency wins; a staged certificate is carried
// through before anything new is created; a published one's clean-up is
// finished even far from expiry; only then does the window decide.
// Nothing applying means not due.
var renewalChain = []renewalPolicy{
	renewalEmergencyPolicy,
	renewalStagedPolicy,
	renewalWindowPolicy,
	renewalCleanupPolicy,
}

// DecideRenewal runs the renewal's policy chain on what the read step
// found.
func DecideRenewal(f RenewalFacts) RenewalDecision {
	f = f.withDefaults()
	v := newRenewalView(f)
	d := renewalNotDue(v)
	for _, p := range renewalChain {
		if got, ok := p(v); ok {
			d = got
			break
		}
	}
	if v.hasCur {
		d.Outlive = v.cur.NotAfter
	}
	d.Replace = renewalReplace(f)
	return d
}

func (f RenewalFacts) withDefaults() RenewalFacts {
	if f.Window <= 0 {
		f.Window = DefaultRenewalWindow
	}
	if f.LeadTime <= 0 {
		f.LeadTime = DefaultRenewalLeadTime
	}
	if f.EmergencyThreshold <= 0 {
		f.EmergencyThreshold = DefaultEmergencyThreshold
	}
	return f
}

func newRenewalView(f RenewalFacts) renewalView {
	v := renewalView{f: f}
	v.cur, v.hasCur = f.Certificate(f.Current)
	if n, ok := stagedCandidate(f); ok && UsableStaged(n, f.Now, f.NextEffective) {
		v.staged = &n
	}
	for _, tp := range f.Retired {
		for _, k := range f.EntraKeys {
			if certs.SameThumbprint(k, tp) {
				v.retiredInEntra = append(v.retiredInEntra, tp)
				break
			}
		}
	}
	v.daysLeft = RenewalDaysLeft(v.cur.NotAfter, f.Now)
	return v
}

// stagedCandidate is the staged (next) certificate, when Get-AuthConfig
// names one other than the current and it is in the store.
func stagedCandidate(f RenewalFacts) (RenewalCertificate, bool) {
	if f.Next == "" || certs.SameThumbprint(f.Next, f.Current) {
		return RenewalCertificate{}, false
	}
	return f.Certificate(f.Next)
}

// renewalReplace names a staged certificate the renewal cannot use (not
// in the store, or not usable): a new one replaces it.
func renewalReplace(f RenewalFacts) string {
	if f.Next == "" || certs.SameThumbprint(f.Next, f.Current) {
		return ""
	}
	if n, ok := f.Certificate(f.Next); ok && UsableStaged(n, f.Now, f.NextEffective) {
		return ""
	}
	return f.Next
}

// UsableStaged: a staged certificate the renewal can carry through: its
// key exportable and read, valid now and at its effective date (now, if
// that has passed).
func UsableStaged(c RenewalCertificate, now, effective time.Time) bool {
	at := effective
	if at.Before(now) {
		at = now
	}
	return c.Exportable && c.HasDER && c.ValidAt(now) && c.ValidAt(at)
}

// RenewalDaysLeft rounds down: a certificate expiring in 23 hours has 0
// days left.
func RenewalDaysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

// renewalEmergencyPolicy: no current certificate, or one expired or
// expiring within the emergency threshold. A usable staged certificate is
// published now; otherwise a new one takes effect now.
func renewalEmergencyPolicy(v renewalView) (RenewalDecision, bool) {
	f := v.f
	if v.hasCur && v.cur.NotAfter.After(f.Now.Add(f.EmergencyThreshold)) {
		return RenewalDecision{}, false
	}
	d := RenewalDecision{Action: RenewalActionEmergency, Emergency: true, Publish: true, Effective: f.Now}
	switch {
	case f.Current == "":
		d.Policy, d.Reason = RenewalNoCurrent, "Get-AuthConfig shows no current certificate"
	case !v.hasCur:
		d.Policy, d.Reason = RenewalCurrentNotInStore, fmt.Sprintf("the current certificate %s is not in the certificate store", f.Current)
	case v.cur.NotAfter.Before(f.Now):
		d.Policy = RenewalCurrentExpired
		d.Reason = fmt.Sprintf("the current certificate %s expired on %s: OAuth (free/busy) is down until a new one is published", f.Current, v.cur.NotAfter.UTC().Format(time.RFC3339))
	default:
		d.Policy = RenewalWithinEmergency
		d.Reason = fmt.Sprintf("the current certificate %s expires on %s, within the emergency threshold of %s", f.Current, v.cur.NotAfter.UTC().Format(time.RFC3339), f.EmergencyThreshold)
	}
	if v.staged != nil {
		d.Staged = v.staged.Thumbprint
		d.Reason += fmt.Sprintf("; publishing the staged certificate %s now", v.staged.Thumbprint)
	} else {
		d.Create = true
		d.Reason += "; a new certificate takes effect now"
	}
	return d, true
}

// renewalStagedPolicy: a usable staged certificate is carried through:
// waited for and published, or, when its effective date is beyond the
// window, its key uploaded and the rest left to a later run.
func renewalStagedPolicy(v renewalView) (RenewalDecision, bool) {
	f := v.f
	if v.staged == nil {
		return RenewalDecision{}, false
	}
	d := RenewalDecision{Action: RenewalActionResume, Staged: v.staged.Thumbprint, Effective: f.NextEffective}
	if d.Effective.IsZero() {
		d.Effective = f.Now
	}
	if d.Effective.After(f.Now.Add(f.Window)) {
		d.Policy, d.StagedLater = RenewalStagedBeyondWindow, true
		d.Reason = fmt.Sprintf("certificate %s is staged for %s, beyond the %s window: its key is uploaded now, a later run publishes it",
			v.staged.Thumbprint, d.Effective.UTC().Format(time.DateOnly), RenewalDays(f.Window))
		return d, true
	}
	d.Policy, d.Wait, d.Publish = RenewalStaged, true, true
	d.Reason = fmt.Sprintf("certificate %s is already staged, effective %s; carrying it through", v.staged.Thumbprint, d.Effective.UTC().Format(time.RFC3339))
	return d, true
}

// renewalWindowPolicy: the current certificate expires within the window.
// The new one takes effect after the lead time, but never later than the
// emergency threshold before the current one expires.
func renewalWindowPolicy(v renewalView) (RenewalDecision, bool) {
	f := v.f
	if v.cur.NotAfter.After(f.Now.Add(f.Window)) {
		return RenewalDecision{}, false
	}
	d := RenewalDecision{Action: RenewalActionRenew, Policy: RenewalWithinWindow, Create: true, Wait: true, Publish: true, Effective: f.Now.Add(f.LeadTime)}
	if latest := v.cur.NotAfter.Add(-f.EmergencyThreshold); latest.Before(d.Effective) {
		d.Effective = latest
	}
	d.Reason = fmt.Sprintf("the current certificate %s expires on %s (%d day(s) left), within the %s window; the new one takes effect %s",
		f.Current, v.cur.NotAfter.UTC().Format(time.DateOnly), v.daysLeft, RenewalDays(f.Window), d.Effective.UTC().Format(time.RFC3339))
	return d, true
}

// renewalCleanupPolicy: an earlier renewal published its certificate but
// left the previous one set or retired keys in Entra.
func renewalCleanupPolicy(v renewalView) (RenewalDecision, bool) {
	var parts []string
	if v.f.Previous != "" {
		parts = append(parts, "previous certificate "+v.f.Previous+" is still set")
	}
	if len(v.retiredInEntra) > 0 {
		parts = append(parts, "retired certificate key(s) "+strings.Join(v.retiredInEntra, ", ")+" still in Entra")
	}
	if len(parts) == 0 {
		return RenewalDecision{}, false
	}
	return RenewalDecision{Action: RenewalActionFinish, Policy: RenewalCleanupPending, Reason: "finishing an earlier renewal: " + strings.Join(parts, "; ")}, true
}

// renewalNotDue is the answer when no policy applies.
func renewalNotDue(v renewalView) RenewalDecision {
	return RenewalDecision{Action: RenewalActionNone, Policy: RenewalNotDue,
		Reason: fmt.Sprintf("the current certificate %s expires on %s: %d day(s) left, outside the %s window",
			v.f.Current, v.cur.NotAfter.UTC().Format(time.DateOnly), v.daysLeft, RenewalDays(v.f.Window))}
}

// RenewalDays prints a whole number of days as "60-day", anything else as
// a duration.
func RenewalDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d-day", int(d/(24*time.Hour)))
	}
	return d.String()
}

// RenewalModeV0 is the mode rule of renewals started before the mode was
// decided by RenewalMode in a local activity: the requested mode, else
// the dedicated application when the evoSTS auth server names one, else
// the first-party service principal. Such runs still replay through it.
func RenewalModeV0(requested, dedicatedAppID string) ModeDecision {
	switch requested {
	case string(ModeDedicatedApp):
		return ModeDecision{Mode: ModeDedicatedApp, Reason: "mode dedicated-app requested"}
	case string(ModeLegacyFirstParty):
		return ModeDecision{Mode: ModeLegacyFirstParty, Reason: "mode legacy-first-party requested"}
	}
	if dedicatedAppID != "" {
		return ModeDecision{Mode: ModeDedicatedApp, Reason: "detected: the evoSTS auth server uses application " + dedicatedAppID}
	}
	return ModeDecision{Mode: ModeLegacyFirstParty, Reason: "detected: no evoSTS auth server names a dedicated application"}
}

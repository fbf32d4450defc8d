package plan

import (
	"strings"
	"testing"
	"time"
)

// TestDecideRenewal: the renewal's policy chain, one case per way a run
// can go, each naming the policy that decides and its reason. The
// defaults follow shared/reference/hybrid-facts.md (c), rows "scenario 2:
// stage next" (a current certificate within 60 days gets a successor
// staged) and "stage-next lead time" (EnableDaysInFuture = 30); "days
// left" rounds down as the monitoring script does.
func TestDecideRenewal(t *testing.T) {
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cert := func(tp string, notAfter time.Time) RenewalCertificate {
		return RenewalCertificate{Thumbprint: tp, NotBefore: notAfter.Add(-5 * 365 * day), NotAfter: notAfter, Exportable: true, HasDER: true}
	}
	soon := cert("CUR", now.Add(10*day))
	far := cert("CUR", now.Add(100*day))
	staged := cert("NEXT", now.Add(5*365*day))
	locked := staged
	locked.Exportable = false
	shortLived := cert("NEXT", now.Add(20*day)) // expires before its effective date
	withCur := func(c RenewalCertificate, more ...RenewalCertificate) RenewalFacts {
		return RenewalFacts{Now: now, Current: c.Thumbprint, Certificates: append([]RenewalCertificate{c}, more...)}
	}
	with := func(f RenewalFacts, edit func(*RenewalFacts)) RenewalFacts { edit(&f); return f }

	for _, c := range []struct {
		name   string
		f      RenewalFacts
		policy string
		action string
		reason string
		check  func(t *testing.T, d RenewalDecision)
	}{
		{"far from expiry", withCur(far), RenewalNotDue, RenewalActionNone, "100 day(s) left, outside the 60-day window", nil},
		{"within the window", withCur(soon), RenewalWithinWindow, RenewalActionRenew, "(10 day(s) left), within the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				// 30 days ahead would be after the current one expires:
				// the emergency threshold before it instead.
				if !d.Create || !d.Wait || !d.Publish || d.Emergency || !d.Effective.Equal(soon.NotAfter.Add(-day)) || !d.Outlive.Equal(soon.NotAfter) {
					t.Errorf("%+v", d)
				}
			}},
		{"within the window, lead time fits", withCur(cert("CUR", now.Add(50*day))), RenewalWithinWindow, RenewalActionRenew, "within the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				if !d.Effective.Equal(now.Add(DefaultRenewalLeadTime)) {
					t.Errorf("effective %s", d.Effective)
				}
			}},
		{"a window of the operator's", with(withCur(far), func(f *RenewalFacts) { f.Window = 120 * day }), RenewalWithinWindow, RenewalActionRenew, "within the 120-day window", nil},
		{"previous still set", with(withCur(far), func(f *RenewalFacts) { f.Previous = "OLD" }), RenewalCleanupPending, RenewalActionFinish,
			"finishing an earlier renewal: previous certificate OLD is still set", nil},
		{"the window wins over an unfinished clean-up", with(withCur(soon), func(f *RenewalFacts) { f.Previous = "OLD" }), RenewalWithinWindow, RenewalActionRenew,
			"within the 60-day window", nil},
		{"retired key still in Entra", with(withCur(far), func(f *RenewalFacts) { f.Retired, f.EntraKeys = []string{"OLD"}, []string{"cur", "old"} }),
			RenewalCleanupPending, RenewalActionFinish, "retired certificate key(s) OLD still in Entra", nil},
		{"retired key already gone", with(withCur(far), func(f *RenewalFacts) { f.Retired, f.EntraKeys = []string{"OLD"}, []string{"CUR"} }),
			RenewalNotDue, RenewalActionNone, "outside the 60-day window", nil},
		{"no current certificate", RenewalFacts{Now: now}, RenewalNoCurrent, RenewalActionEmergency,
			"Get-AuthConfig shows no current certificate; a new certificate takes effect now",
			func(t *testing.T, d RenewalDecision) {
				if !d.Emergency || !d.Create || !d.Publish || d.Wait || !d.Effective.Equal(now) || !d.Outlive.IsZero() {
					t.Errorf("%+v", d)
				}
			}},
		{"current not in the store", RenewalFacts{Now: now, Current: "GONE"}, RenewalCurrentNotInStore, RenewalActionEmergency,
			"the current certificate GONE is not in the certificate store", nil},
		{"current expired", withCur(cert("CUR", now.Add(-day))), RenewalCurrentExpired, RenewalActionEmergency,
			"expired on 2026-11-01T12:00:00Z: OAuth (free/busy) is down", nil},
		{"within the emergency threshold", withCur(cert("CUR", now.Add(12*time.Hour))), RenewalWithinEmergency, RenewalActionEmergency,
			"within the emergency threshold of 24h0m0s", nil},
		{"a threshold of the operator's", with(withCur(cert("CUR", now.Add(36*time.Hour))), func(f *RenewalFacts) { f.EmergencyThreshold = 48 * time.Hour }),
			RenewalWithinEmergency, RenewalActionEmergency, "within the emergency threshold of 48h0m0s", nil},
		{"emergency publishes a usable staged certificate", with(withCur(cert("CUR", now.Add(-day)), staged), func(f *RenewalFacts) {
			f.Next, f.NextEffective = "NEXT", now.Add(20*day)
		}), RenewalCurrentExpired, RenewalActionEmergency, "; publishing the staged certificate NEXT now",
			func(t *testing.T, d RenewalDecision) {
				if d.Create || d.Staged != "NEXT" || d.Replace != "" || !d.Effective.Equal(now) {
					t.Errorf("%+v", d)
				}
			}},
		{"staged within the window", with(withCur(soon, staged), func(f *RenewalFacts) { f.Next, f.NextEffective = "NEXT", now.Add(8*day) }),
			RenewalStaged, RenewalActionResume, "certificate NEXT is already staged, effective 2026-11-10T12:00:00Z; carrying it through",
			func(t *testing.T, d RenewalDecision) {
				if d.Create || !d.Wait || !d.Publish || d.StagedLater || d.Staged != "NEXT" || !d.Effective.Equal(now.Add(8*day)) {
					t.Errorf("%+v", d)
				}
			}},
		{"staged without a date takes effect now", with(withCur(far, staged), func(f *RenewalFacts) { f.Next = "next" }),
			RenewalStaged, RenewalActionResume, "already staged, effective 2026-11-02T12:00:00Z",
			func(t *testing.T, d RenewalDecision) {
				if !d.Effective.Equal(now) {
					t.Errorf("effective %s", d.Effective)
				}
			}},
		{"staged beyond the window", with(withCur(cert("CUR", now.Add(200*day)), staged), func(f *RenewalFacts) { f.Next, f.NextEffective = "NEXT", now.Add(90*day) }),
			RenewalStagedBeyondWindow, RenewalActionResume, "is staged for 2027-01-31, beyond the 60-day window: its key is uploaded now, a later run publishes it",
			func(t *testing.T, d RenewalDecision) {
				if !d.StagedLater || d.Wait || d.Publish {
					t.Errorf("%+v", d)
				}
			}},
		{"staged but not exportable is replaced", with(withCur(soon, locked), func(f *RenewalFacts) { f.Next, f.NextEffective = "NEXT", now.Add(8*day) }),
			RenewalWithinWindow, RenewalActionRenew, "within the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				if d.Replace != "NEXT" || d.Staged != "" || !d.Create {
					t.Errorf("%+v", d)
				}
			}},
		{"staged but expiring before its date is replaced", with(withCur(soon, shortLived), func(f *RenewalFacts) { f.Next, f.NextEffective = "NEXT", now.Add(25*day) }),
			RenewalWithinWindow, RenewalActionRenew, "within the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				if d.Replace != "NEXT" || d.Staged != "" {
					t.Errorf("%+v", d)
				}
			}},
		{"staged but not in the store is replaced, far from expiry", with(withCur(far), func(f *RenewalFacts) { f.Next = "LOST" }),
			RenewalNotDue, RenewalActionNone, "outside the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				if d.Replace != "LOST" || d.Create {
					t.Errorf("%+v", d)
				}
			}},
		{"next names the current certificate", with(withCur(far), func(f *RenewalFacts) { f.Next = "cur" }),
			RenewalNotDue, RenewalActionNone, "outside the 60-day window",
			func(t *testing.T, d RenewalDecision) {
				if d.Replace != "" || d.Staged != "" {
					t.Errorf("%+v", d)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := DecideRenewal(c.f)
			if d.Policy != c.policy || d.Action != c.action || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("DecideRenewal = %s %s %q; want %s %s containing %q", d.Policy, d.Action, d.Reason, c.policy, c.action, c.reason)
			}
			if c.check != nil {
				c.check(t, d)
			}
		})
	}
}

// TestUsableStaged: a staged certificate is carried through only when its
// key can be read and uploaded and it is valid now and on its date.
func TestUsableStaged(t *testing.T) {
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	ok := RenewalCertificate{Thumbprint: "A", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(400 * 24 * time.Hour), Exportable: true, HasDER: true}
	for _, c := range []struct {
		name      string
		edit      func(*RenewalCertificate)
		effective time.Time
		want      bool
	}{
		{"usable", func(*RenewalCertificate) {}, now.Add(24 * time.Hour), true},
		{"date passed: valid now is enough", func(*RenewalCertificate) {}, now.Add(-48 * time.Hour), true},
		{"not exportable", func(c *RenewalCertificate) { c.Exportable = false }, now, false},
		{"public part not read", func(c *RenewalCertificate) { c.HasDER = false }, now, false},
		{"not yet valid", func(c *RenewalCertificate) { c.NotBefore = now.Add(time.Hour) }, now.Add(2 * time.Hour), false},
		{"expires before its date", func(c *RenewalCertificate) { c.NotAfter = now.Add(24 * time.Hour) }, now.Add(48 * time.Hour), false},
	} {
		c2 := ok
		c.edit(&c2)
		if got := UsableStaged(c2, now, c.effective); got != c.want {
			t.Errorf("%s: UsableStaged = %v; want %v", c.name, got, c.want)
		}
	}
}

// TestRenewalModeV0 pins the mode rule of renewals started before the
// mode was decided in a local activity: they replay through it.
func TestRenewalModeV0(t *testing.T) {
	for _, c := range []struct {
		requested, app string
		want           Mode
		reason         string
	}{
		{"dedicated-app", "", ModeDedicatedApp, "mode dedicated-app requested"},
		{"legacy-first-party", "app", ModeLegacyFirstParty, "mode legacy-first-party requested"},
		{"", "app-1", ModeDedicatedApp, "detected: the evoSTS auth server uses application app-1"},
		{"detect", "", ModeLegacyFirstParty, "detected: no evoSTS auth server names a dedicated application"},
	} {
		if d := RenewalModeV0(c.requested, c.app); d.Mode != c.want || d.Reason != c.reason {
			t.Errorf("RenewalModeV0(%q, %q) = %+v; want %s %q", c.requested, c.app, d, c.want, c.reason)
		}
	}
}

func TestRenewalDaysLeft(t *testing.T) {
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   time.Duration
		want int
	}{{23 * time.Hour, 0}, {24 * time.Hour, 1}, {-time.Hour, -1}, {-25 * time.Hour, -2}} {
		if got := RenewalDaysLeft(now.Add(c.in), now); got != c.want {
			t.Errorf("RenewalDaysLeft(now+%s) = %d; want %d", c.in, got, c.want)
		}
	}
}

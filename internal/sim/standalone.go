package sim

// World operations the stand-alone simulator's admin API needs: replacing
// a live world's contents (handlers keep their *World), finding the tenant
// a PowerShell endpoint's site names, and pinning or releasing the clock.

import (
	"strings"
	"time"
)

// Replace makes w hold other's contents: tenants, fault rules (and their
// progress), seed, pinned time and knobs. Request counters and an injected
// clock (SetClock) stay, being about this process rather than the world.
// other must be a world nothing else uses (Parse's result); it must not be
// used afterwards.
func (w *World) Replace(other *World) {
	if other == w {
		return
	}
	other.mu.Lock()
	if other.byID == nil {
		other.reindex()
	}
	seed, now, gen := other.Seed, other.FixedNow, other.Generate
	faults, tenants, injector := other.FaultRules, other.Tenants, other.faults
	legacy, page, byID := other.LegacyFirstPartyBlocked, other.EXOPageSize, other.byID
	other.mu.Unlock()

	w.mu.Lock()
	defer w.mu.Unlock()
	w.Seed, w.FixedNow, w.Generate = seed, now, gen
	w.FaultRules, w.Tenants, w.faults = faults, tenants, injector
	w.LegacyFirstPartyBlocked, w.EXOPageSize, w.byID = legacy, page, byID
}

// TenantsAtSite lists the IDs of the tenants whose on-prem Exchange
// organisation is at site (lync false), or whose Lync deployment is
// (lync true), in world order. Sites compare case-insensitively.
func (w *World) TenantsAtSite(site string, lync bool) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for _, t := range w.Tenants {
		s := t.Site
		if lync {
			if t.Lync == nil {
				continue
			}
			s = t.Lync.Site
		}
		if s != "" && strings.EqualFold(s, site) {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// PinnedNow is the world's pinned time (the YAML now:) and whether it is
// pinned at all.
func (w *World) PinnedNow() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.FixedNow, !w.FixedNow.IsZero()
}

// SetPinnedNow pins the world's clock to t, or releases it to the wall
// clock when t is zero.
func (w *World) SetPinnedNow(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.FixedNow = t
}

// CurrentTime is Now under the world's lock, for callers outside the
// protocol servers.
func (w *World) CurrentTime() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Now()
}

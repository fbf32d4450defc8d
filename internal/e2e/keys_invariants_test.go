package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// TestNothingLostKeyIdentifiersAndEarlierAuthCertificates: a kept key's
// customKeyIdentifier may not change (the bytes other tools identify it by,
// shared/reference/graph-entities.tsv NOTE "customKeyIdentifier wire
// form"); an unexpired Exchange auth certificate of an earlier year may
// leave the first-party principal only once the tenant's current auth
// certificate is on the dedicated application (the legacy clean-up judges
// keys by their certificate).
func TestNothingLostKeyIdentifiersAndEarlierAuthCertificates(t *testing.T) {
	// first-party keys: [0] foreign unexpired, [1] expired, [2] legacy, [3] an earlier year's auth certificate.
	world := func(t *testing.T) *sim.World {
		w := invariantWorld(t)
		w.Update(w.Tenants[0].ID, func(tn *sim.Tenant) {
			fp := firstPartySP(tn)
			fp.KeyCredentials = append(fp.KeyCredentials, keyCredential(sim.NewCertificate(sim.AuthCertificateSubject, 4242, time.Now().AddDate(-3, 0, 0), time.Now().AddDate(2, 0, 0))))
		})
		return w
	}
	cases := []struct {
		name string
		edit func(tn *sim.Tenant)
		want []string
	}{
		{"foreign key's identifier rewritten", func(tn *sim.Tenant) {
			firstPartySP(tn).KeyCredentials[0].CustomKeyIdentifier = "3q2+7wABAgP/"
		}, []string{"customKeyIdentifier"}},
		{"identifier case changed", func(tn *sim.Tenant) {
			k := &firstPartySP(tn).KeyCredentials[0]
			k.CustomKeyIdentifier = strings.ToLower(k.CustomKeyIdentifier)
		}, []string{"customKeyIdentifier"}},
		{"migrated: the legacy key and the earlier auth certificate removed", func(tn *sim.Tenant) {
			addDedicatedApp(tn, true)
			dropKey(firstPartySP(tn), 3)
			dropKey(firstPartySP(tn), 2)
		}, nil},
		{"not migrated: the earlier auth certificate removed", func(tn *sim.Tenant) {
			dropKey(firstPartySP(tn), 3)
		}, []string{"lost unexpired key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := world(t)
			before, after := w.Clone(), w.Clone()
			tc.edit(after.Tenants[0])
			checkViolations(t, e2e.NothingLost(before, after), tc.want)
		})
	}
}

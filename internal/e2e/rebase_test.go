package e2e_test

import (
	"crypto/x509"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// TestRebasedWorldFiles: each world file of configs/sim the end-to-end
// tests load, moved from its pinned now: to another time, is the same
// world in every respect but time: unpinned; every certificate and key as
// old and as far from expiry as before (so every expiry judgement is the
// same); the thumbprints of Exchange's certificates, its auth config and
// the keys' customKeyIdentifiers naming the re-issued certificates, in
// their letter case; every other field unchanged.
func TestRebasedWorldFiles(t *testing.T) {
	now := time.Date(2031, time.March, 7, 13, 14, 15, 0, time.UTC)
	for _, name := range []string{"small.yaml", "hcw-worldwide.yaml", "gcchigh-portal-keys.yaml", "mixed-builds.yaml"} {
		t.Run(name, func(t *testing.T) {
			orig := loadWorldAt(t, name, time.Time{}) // a zero now: not moved (pinned stays)
			pinned, ok := orig.PinnedNow()
			if !ok {
				t.Fatalf("%s pins no now:", name)
			}
			w := loadWorldAt(t, name, now)
			if _, ok := w.PinnedNow(); ok {
				t.Errorf("still pinned")
			}
			shift := now.Sub(pinned)
			tps := map[string]string{} // old → new thumbprint, upper case
			for i, ot := range orig.Tenants {
				nt := w.Tenants[i]
				for j, oc := range ot.OnPrem.Certificates {
					nc := nt.OnPrem.Certificates[j]
					if !nc.NotBefore.Equal(oc.NotBefore.Add(shift)) || !nc.NotAfter.Equal(oc.NotAfter.Add(shift)) || nc.Subject != oc.Subject {
						t.Errorf("%s: certificate %s valid %s–%s, want %s–%s", ot.ID, oc.Thumbprint, nc.NotBefore, nc.NotAfter, oc.NotBefore.Add(shift), oc.NotAfter.Add(shift))
					}
					if nc.Thumbprint != certs.Thumbprint(nc.DER) || nc.Thumbprint == oc.Thumbprint {
						t.Errorf("%s: certificate thumbprint %s does not name its re-issued DER", ot.ID, nc.Thumbprint)
					}
					tps[oc.Thumbprint] = nc.Thumbprint
				}
				if o, n := ot.OnPrem.AuthConfig.CurrentCertificateThumbprint, nt.OnPrem.AuthConfig.CurrentCertificateThumbprint; o != "" && tps[o] != n {
					t.Errorf("%s: auth config names %s, want %s", ot.ID, n, tps[o])
				}
				type keyed struct{ o, n []sim.KeyCredential }
				var all []keyed
				for k, sp := range ot.Entra.ServicePrincipals {
					all = append(all, keyed{sp.KeyCredentials, nt.Entra.ServicePrincipals[k].KeyCredentials})
				}
				for k, app := range ot.Entra.Applications {
					all = append(all, keyed{app.KeyCredentials, nt.Entra.Applications[k].KeyCredentials})
				}
				for _, kk := range all {
					for k, ok := range kk.o {
						nk := kk.n[k]
						if ok.Key != nil {
							tps[certs.Thumbprint(ok.Key)] = certs.Thumbprint(nk.Key)
						}
						if !nk.StartDateTime.Equal(ok.StartDateTime.Add(shift)) || !nk.EndDateTime.Equal(ok.EndDateTime.Add(shift)) {
							t.Errorf("%s: key %s valid %s–%s, want both moved by %s", ot.ID, ok.KeyID, nk.StartDateTime, nk.EndDateTime, shift)
						}
						if ok.Key != nil && certs.Thumbprint(ok.Key) == strings.ToUpper(ok.CustomKeyIdentifier) {
							// The identifier named its certificate: it still does, in its case.
							want := certs.Thumbprint(nk.Key)
							if ok.CustomKeyIdentifier == strings.ToLower(ok.CustomKeyIdentifier) {
								want = strings.ToLower(want)
							}
							if nk.CustomKeyIdentifier != want {
								t.Errorf("%s: key %s identifier %q, want %q", ot.ID, ok.KeyID, nk.CustomKeyIdentifier, want)
							}
						} else if nk.CustomKeyIdentifier != ok.CustomKeyIdentifier {
							t.Errorf("%s: key %s identifier %q changed to %q", ot.ID, ok.KeyID, ok.CustomKeyIdentifier, nk.CustomKeyIdentifier)
						}
					}
				}
			}
			// Everything else is equal: with times and certificate bytes
			// blanked, and the original's thumbprints mapped, the dumps are.
			if len(tps) == 0 {
				t.Fatal("no certificates moved")
			}
			mapped := func(s string) string {
				if n, ok := tps[strings.ToUpper(s)]; ok {
					if s == strings.ToLower(s) {
						return strings.ToLower(n)
					}
					return n
				}
				return s
			}
			od, nd := blanked(t, orig, mapped), blanked(t, w, func(s string) string { return s })
			if od != nd {
				t.Errorf("the worlds differ beyond time and certificates:\n%s\n----\n%s", od, nd)
			}
			t.Logf("%s: %d certificate(s) re-issued, moved by %s", name, len(tps), shift)
		})
	}
}

// blanked is w's dump with every time zeroed, every certificate's bytes
// removed and every string passed through mapString (w is changed).
func blanked(t *testing.T, w *sim.World, mapString func(string) string) string {
	t.Helper()
	timeType := reflect.TypeFor[time.Time]()
	w.SetPinnedNow(time.Time{})
	walkWorld(w, func(v reflect.Value) {
		switch {
		case v.Type() == timeType:
			v.Set(reflect.ValueOf(time.Time{}))
		case v.Kind() == reflect.String:
			v.SetString(mapString(v.String()))
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
			if _, err := x509.ParseCertificate(v.Bytes()); err == nil {
				v.SetBytes(nil)
			}
		}
	})
	d, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	return string(d)
}

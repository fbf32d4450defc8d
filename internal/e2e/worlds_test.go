package e2e_test

import (
	"crypto"
	"crypto/x509"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/e2e"
	"github.com/hybridflow/hybridflow/internal/plan"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// The stand-alone simulator judges expiry by the wall clock, as the
// product does, and refuses a world pinned to another time. So every world
// these tests serve is built relative to the time the test starts: which
// keys and certificates have expired, and by how much, is fixed relative
// to that moment, never to the day the test runs.

// worldNow is the time a test's world is built around (whole seconds, as
// certificates carry their validity).
func worldNow() time.Time { return time.Now().UTC().Truncate(time.Second) }

// generated builds a world of generated tenants around worldNow,
// round-tripped through Dump and Parse so it is validated like a YAML
// world. It pins no clock: the simulator serves it on the wall clock.
func generated(t *testing.T, spec sim.GenerateSpec, seed int64, edit func(ts []*sim.Tenant)) *sim.World {
	t.Helper()
	ts, err := sim.GenerateTenants(spec, seed, worldNow())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ts)
	}
	return reparsed(t, &sim.World{Seed: seed, Tenants: ts})
}

// reparsed is w dumped and parsed again: validated like a world file, with
// its indexes built.
func reparsed(t *testing.T, w *sim.World) *sim.World {
	t.Helper()
	data, err := w.Dump()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sim.Parse(t.Name(), data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// loadWorld loads a world file of configs/sim, moved from its pinned now:
// onto worldNow (rebased).
func loadWorld(t *testing.T, name string) *sim.World {
	t.Helper()
	return loadWorldAt(t, name, worldNow())
}

func loadWorldAt(t *testing.T, name string, now time.Time) *sim.World {
	t.Helper()
	root, err := devserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Load(filepath.Join(root, "configs", "sim", name))
	if err != nil {
		t.Fatal(err)
	}
	if now.IsZero() {
		return w
	}
	return rebased(t, w, now)
}

// rebased moves a world pinned to a fixed now: onto now, unpinned: every
// time in it moves by the same amount, so every key and certificate keeps
// its age and its remaining validity. Certificates are issued again with
// the moved validity (same subject, serial and key: a certificate's
// validity is inside its DER), and every reference to one follows it: the
// thumbprint wherever a string field holds it (Exchange's certificates and
// auth config, a key's customKeyIdentifier), in the same letter case, and
// the DER wherever a byte field does (a certificate, a key credential). A
// world that pins no clock is returned as it is.
func rebased(t *testing.T, w *sim.World, now time.Time) *sim.World {
	t.Helper()
	pinned, ok := w.PinnedNow()
	if !ok {
		return w
	}
	if w.Generate != nil {
		t.Fatal("rebased: a world that generates tenants at load is not supported")
	}
	shift := now.Sub(pinned)
	// First pass: every certificate the world holds, issued again.
	derNew := map[string][]byte{} // old DER → new DER
	tpNew := map[string]string{}  // old thumbprint (upper case) → new
	walkWorld(w, func(v reflect.Value) {
		if v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Uint8 || v.Len() == 0 {
			return
		}
		der := v.Bytes()
		if _, done := derNew[string(der)]; done {
			return
		}
		old, err := x509.ParseCertificate(der)
		if err != nil {
			return // bytes that are not a certificate stay as they are
		}
		if !old.SerialNumber.IsInt64() || old.Subject.String() != "CN="+old.Subject.CommonName {
			t.Fatalf("rebased: certificate %s (serial %s) was not made by sim.NewCertificate", old.Subject, old.SerialNumber)
		}
		c := sim.NewCertificate(old.Subject.CommonName, old.SerialNumber.Int64(), old.NotBefore.Add(shift), old.NotAfter.Add(shift))
		again, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if pk, ok := old.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(again.PublicKey) {
			t.Fatalf("rebased: certificate %s has a key other than the simulator's; it cannot be issued again", old.Subject)
		}
		derNew[string(der)] = c.DER
		tpNew[certs.Thumbprint(der)] = c.Thumbprint
	})
	// Second pass: times moved, certificates and thumbprints replaced.
	timeType := reflect.TypeFor[time.Time]()
	walkWorld(w, func(v reflect.Value) {
		switch {
		case v.Type() == timeType:
			if tm := v.Interface().(time.Time); !tm.IsZero() {
				v.Set(reflect.ValueOf(tm.Add(shift)))
			}
		case v.Kind() == reflect.String:
			s := v.String()
			if n, ok := tpNew[strings.ToUpper(s)]; ok {
				if s == strings.ToLower(s) {
					n = strings.ToLower(n)
				}
				v.SetString(n)
			}
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
			if n, ok := derNew[string(v.Bytes())]; ok {
				v.SetBytes(slices.Clone(n))
			}
		}
	})
	w.SetPinnedNow(time.Time{})
	return reparsed(t, w)
}

// walkWorld calls visit on every settable value reachable from w's
// exported fields (through structs, pointers, slices, arrays and map
// values), parents first, without descending into a time.Time or a []byte.
func walkWorld(w *sim.World, visit func(v reflect.Value)) {
	timeType := reflect.TypeFor[time.Time]()
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if v.CanSet() {
			visit(v)
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if v.Type() == timeType {
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				return
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				// Map values are not addressable: walk a copy, store it back.
				c := reflect.New(v.Type().Elem()).Elem()
				c.Set(v.MapIndex(k))
				walk(c)
				v.SetMapIndex(k, c)
			}
		}
	}
	walk(reflect.ValueOf(w).Elem())
}

// --- facts about a tenant, read from the world (never from the run) ---

func profileOf(t *testing.T, tn *sim.Tenant) cloud.Profile {
	t.Helper()
	p, err := cloud.Lookup(tn.Cloud)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func firstPartySP(tn *sim.Tenant) *sim.ServicePrincipal {
	for _, sp := range tn.Entra.ServicePrincipals {
		if strings.EqualFold(sp.AppID, cloud.FirstPartyAppID) {
			return sp
		}
	}
	return nil
}

func authCert(t *testing.T, tn *sim.Tenant) *sim.ExchangeCertificate {
	t.Helper()
	for _, c := range tn.OnPrem.Certificates {
		if strings.EqualFold(c.Thumbprint, tn.OnPrem.AuthConfig.CurrentCertificateThumbprint) {
			return c
		}
	}
	t.Fatalf("%s: no current auth certificate", tn.ID)
	return nil
}

func dedicatedName(tn *sim.Tenant) string {
	return plan.DedicatedAppPrefix + strings.ToLower(tn.OnPrem.OrganizationGUID)
}

// smtpDomain is the tenant's on-prem default accepted domain.
func smtpDomain(tn *sim.Tenant) string {
	for _, d := range tn.OnPrem.AcceptedDomains {
		if d.Default {
			return d.DomainName
		}
	}
	return ""
}

// spnHosts are the hosts of the on-prem HTTP virtual directories (step 5).
func spnHosts(tn *sim.Tenant) []string {
	var hosts []string
	for _, v := range tn.OnPrem.VirtualDirectories {
		for _, u := range []string{v.InternalURL, v.ExternalURL} {
			if h := cloud.HostOfURL(u); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

func keyCredential(c *sim.ExchangeCertificate) sim.KeyCredential {
	return sim.KeyCredential{KeyID: "7d8f0a51-3c55-4a43-9f44-6f1c1f6f0001", CustomKeyIdentifier: c.Thumbprint, DisplayName: "CN=" + sim.AuthCertificateSubject,
		Type: "AsymmetricX509Cert", Usage: "Verify", StartDateTime: c.NotBefore, EndDateTime: c.NotAfter, Key: c.DER}
}

func tenantOf(t *testing.T, w *sim.World, id string) *sim.Tenant {
	t.Helper()
	for _, tn := range w.Tenants {
		if strings.EqualFold(tn.ID, id) {
			return tn
		}
	}
	t.Fatalf("tenant %s not in the world", id)
	return nil
}

func hasKey(ks []sim.KeyCredential, tp string) bool {
	for _, k := range ks {
		if strings.EqualFold(e2e.KeyThumbprint(k), tp) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func keyTP(k sim.KeyCredential) string { return e2e.KeyThumbprint(k) }

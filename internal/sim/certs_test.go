package sim

import (
	"testing"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

func TestNewCertificateIsRealAndDistinct(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewCertificate(AuthCertificateSubject, 1, nb, nb.AddDate(5, 0, 0))
	b := NewCertificate(AuthCertificateSubject, 2, nb, nb.AddDate(5, 0, 0))
	a2 := NewCertificate(AuthCertificateSubject, 1, nb, nb.AddDate(5, 0, 0))
	if a.Thumbprint == b.Thumbprint {
		t.Fatal("different serials must give different thumbprints")
	}
	if a.Thumbprint != a2.Thumbprint {
		t.Fatal("certificate generation must be deterministic")
	}
	if _, err := certs.Check(a.DER, nb.AddDate(1, 0, 0), false); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Check(a.DER, nb.AddDate(6, 0, 0), false); err == nil {
		t.Fatal("expired certificate must be refused")
	}
	if a.KeySize != 2048 {
		t.Fatalf("key size %d", a.KeySize)
	}
}

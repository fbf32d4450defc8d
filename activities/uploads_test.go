package activities

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// TestCheckUploadsRefusesBadCertificates: before any Graph write the keys
// to upload are parsed as X.509 and refused, non-retryably and naming the
// thumbprint, when unparseable, expired, not RSA or below 2048 bits.
func TestCheckUploadsRefusesBadCertificates(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(pub, priv any, notAfter time.Time) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Microsoft Exchange Server Auth Certificate"},
			NotBefore: now.AddDate(-1, 0, 0), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	rsaKey := func(bits int) *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k2048, k1024 := rsaKey(2048), rsaKey(1024)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := mk(&k2048.PublicKey, k2048, now.AddDate(2, 0, 0))
	cases := []struct {
		name string
		der  []byte
		want string // "" = accepted
	}{
		{"RSA 2048, valid", good, ""},
		{"expired", mk(&k2048.PublicKey, k2048, now.Add(-time.Hour)), "expired"},
		{"RSA 1024", mk(&k1024.PublicKey, k1024, now.AddDate(2, 0, 0)), "1024-bit"},
		{"ECDSA", mk(&ec.PublicKey, ec, now.AddDate(2, 0, 0)), "RSA key"},
		{"not DER", []byte("-----BEGIN CERTIFICATE-----"), "not valid X.509"},
		{"truncated", good[:len(good)/2], "not valid X.509"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := plan.Key{Thumbprint: certs.Thumbprint(c.der), DER: c.der}
			err := checkUploads([]plan.Key{{Thumbprint: certs.Thumbprint(good), DER: good}, k}, now)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused a good certificate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), k.Thumbprint) {
				t.Fatalf("err %v, want a refusal naming %s and %q", err, k.Thumbprint, c.want)
			}
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != ErrInvalidInput {
				t.Fatalf("err %v is not a non-retryable %s", err, ErrInvalidInput)
			}
		})
	}
}

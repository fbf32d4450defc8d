package certs

import (
	"crypto/rsa"
	"strings"
	"testing"
	"time"
)

// FuzzCheck: Check never panics on any bytes, and whatever it accepts is
// X.509 with an RSA key of at least MinKeyBits that is unexpired at now
// (unless the emergency path allows expired). The corpus in
// testdata/fuzz/FuzzCheck holds a good RSA-2048 certificate, an expired
// one (both ways), RSA-1024, ECDSA P-256, PEM text, truncated DER and DER
// with a trailing byte.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("not a certificate"), int64(0), false)
	f.Fuzz(func(t *testing.T, der []byte, unix int64, allowExpired bool) {
		now := time.Unix(unix, 0)
		c, err := Check(der, now, allowExpired)
		if err != nil {
			if c != nil {
				t.Fatal("certificate returned with an error")
			}
			return
		}
		pk, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			t.Fatalf("accepted a %T key", c.PublicKey)
		}
		if pk.N.BitLen() < MinKeyBits {
			t.Fatalf("accepted a %d-bit key", pk.N.BitLen())
		}
		if !allowExpired && now.After(c.NotAfter) {
			t.Fatalf("accepted a certificate expired on %s at %s", c.NotAfter, now)
		}
		if string(c.Raw) != string(der) {
			t.Fatal("accepted bytes beyond the certificate")
		}
		if tp := Thumbprint(der); !ValidThumbprint(tp) || !SameThumbprint(tp, strings.ToLower(tp)) {
			t.Fatalf("thumbprint %q does not validate or compare", tp)
		}
	})
}

// refThumbprint is the rule written out: exactly 40 ASCII hex digits.
func refThumbprint(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// FuzzThumbprint: ValidThumbprint accepts exactly 40 hex digits, and
// SameThumbprint is case-insensitive equality that never matches empty.
func FuzzThumbprint(f *testing.F) {
	for _, s := range []string{
		"0123456789abcdef0123456789ABCDEF01234567", "0123456789abcdef0123456789ABCDEF0123456",
		"0123456789abcdef0123456789ABCDEF0123456g", "0123456789abcdef0123456789ABCDEF01234567\n",
		"\u200e0123456789abcdef0123456789ABCDEF01234567", "",
	} {
		f.Add(s, strings.ToUpper(s))
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := ValidThumbprint(a), refThumbprint(a); got != want {
			t.Errorf("ValidThumbprint(%q) = %v, want %v", a, got, want)
		}
		if SameThumbprint(a, a) != (a != "") {
			t.Errorf("SameThumbprint(%q, itself) = %v", a, SameThumbprint(a, a))
		}
		if SameThumbprint(a, b) != SameThumbprint(b, a) {
			t.Errorf("SameThumbprint not symmetric for %q, %q", a, b)
		}
		if refThumbprint(a) && refThumbprint(b) && SameThumbprint(a, b) != (strings.ToUpper(a) == strings.ToUpper(b)) {
			t.Errorf("SameThumbprint(%q, %q) = %v", a, b, SameThumbprint(a, b))
		}
	})
}

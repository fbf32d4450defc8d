// Package certs handles the public half of Exchange auth certificates: the
// SHA-1 thumbprint Graph's customKeyIdentifier defaults to, parsing, and the
// checks made before a certificate is uploaded (docs/microsoft-behaviour.md,
// "Graph key credentials" and "The auth certificate's life").
package certs

import (
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 is how Windows and Graph name certificates, not a security boundary here.
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Thumbprint is the upper-case hex SHA-1 of the DER, as Windows shows it.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

var thumbprintRE = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

// ValidThumbprint reports whether s is 40 hex digits.
func ValidThumbprint(s string) bool { return thumbprintRE.MatchString(s) }

// SameThumbprint compares thumbprints case-insensitively: Graph and Exchange
// print them in different cases.
func SameThumbprint(a, b string) bool { return a != "" && strings.EqualFold(a, b) }

// MinKeyBits is the smallest RSA key hybridflow uploads.
const MinKeyBits = 2048

// Check parses a DER certificate and refuses what must never be uploaded:
// unparseable data, keys other than RSA of at least 2048 bits, and
// (unless allowExpired, the emergency path) a certificate already expired
// at now.
func Check(der []byte, now time.Time, allowExpired bool) (*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate is not valid X.509 DER: %w", err)
	}
	// Exchange signs its OAuth tokens with the auth certificate's key as
	// RS256, so only RSA keys work; an ECDSA or Ed25519 key would pass a
	// bit-size check it is not subject to and then fail every token.
	pk, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate %s has a %s key; an RSA key of at least %d bits is required", Thumbprint(der), c.PublicKeyAlgorithm, MinKeyBits)
	}
	if pk.N.BitLen() < MinKeyBits {
		return nil, fmt.Errorf("certificate %s has a %d-bit RSA key; at least %d bits are required", Thumbprint(der), pk.N.BitLen(), MinKeyBits)
	}
	if !allowExpired && now.After(c.NotAfter) {
		return nil, fmt.Errorf("certificate %s expired on %s", Thumbprint(der), c.NotAfter.UTC().Format(time.DateOnly))
	}
	return c, nil
}

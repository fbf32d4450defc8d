package sim

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"time"

	"github.com/hybridflow/hybridflow/internal/certs"
)

// simKeyPEM signs and backs every certificate the simulator makes. One
// fixed key keeps world generation fast (no RSA key generation per tenant)
// and deterministic (PKCS#1 v1.5 signatures are), while every certificate
// still differs by serial number and validity, hence by thumbprint. It is a
// simulator key: it protects nothing.
const simKeyPEM = `
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAsjMcMtt5/he/Q1pEgD+vx6m+DMqnw7HyihPFVSBFM8Gtvig0
XkpqvmXs2vp7IMNqmIfF4IRZqhCP3LnkVzqV63hKX/DDVCB8wVwLTb8AY/CmJoQj
NOjrHB4tGGmYZeeithIAK/liyehMHe2yYwffmCxI/hmjue6Hu6vgq0Q+GjysOKJp
XKC9JYBLI0hQ/kPdGgCfapyAb0F8cGWsacDocwoCYdaZMEtYUuqqjj5OadBd/rGY
K7PlBJ6nTlCSDpqZfQy4UlZbBlgWHnce2nIjcrwnoiONykkG8npr3wLzdoJsLHj6
4onpICGhY2RiuhZXy07PbPtONTxXZexZHx3hUwIDAQABAoIBABDjXSHIwRf+oia8
8E8DOiJ/CL7nmdynCahiVUpLA6PzEAc8gjIJdXJT8I2UPYUOYBTSkUNE58aBSVEO
4QAPUlP9k3biN3DKn2gn0/5rQps2HFj8HuYNyPJiPb3ZjBLkT/xXWmLQgLdH56bS
dxyBi4Q9djF2tpiRbZWwpVs13XjY7Kzvhe8oBy3M/7q/pRDOYAVswi0FnhVHvic0
EyFy4YjFwD5yTnrNa9D6BBP6hv3wQGxlA7r8/zLYpgjh4pB5sbEtsPHXyIfQYK0f
G7splfukQjOeuEJ7w9NaOszTSLNhymO6dp1pQnXo9cWHxJ7/p0S8zkyBWj39h0Ag
VwuHphkCgYEA3AgtZSIj+WaaJN4e9UaygjMHTJ1z20NAiDOxo0MQ4byYw7x8K3G6
mNS2cgpR/612gLspQniTvT7h1OZKdmLYFYpXV8MSl/eq4LC7je7Mi5+e2E5seV5u
278ANSjbfiJz42kD38Rvh+Yylgx1lQCMPu/4IcSBVXhk4o+/q8w20Z0CgYEAz1RZ
XXoWSOzuaYwKKh07gbyxtFSQ1oNZorYzwQppgRnOJcinV8/2kfkJw8nX/RtDoiG3
Zk9kJ/GZVrudmqVxZKDV2ewY1uY/DmAZQkRVS8UCHOxjCvlkHCbnZEulO0RfvdRx
6wW1J9hQaZVFrudnIkeH2VXkPW6+l63sFSfCw68CgYEArbr/LNUyFl/+4ZFIXF3/
4HGuF75SlhOZxnEal1AC6lnhPNt8J0lbDgUWMSEY8YnjAW3F/Cf8bvZRlapnrOYK
u6dJo4/xBHCXSWYCEOU2OCBGaYAygfogCf3bih3CgOtvGWX3mx0c+u61jmg0Bvwx
wBf1kaP4gqXW8lSSAHHz7rkCgYBgLABIHBm6Oi1dSFhusKCpzZ2gyJlm6AbsMxhO
s0W9XPsDC9CUKyN1EtA0wawu/DajPoCUNL+Ax9EZKm4xDg1LYE/ShnH/PU6CnJEa
7Bekzf3s7LoEnSqS5HjxTSWYGF9Q7vroyfz+PpkOYO+x8iUlAYlCh1UYKga+1S5t
ocP2gQKBgQCWld7/wFKCGqWbO+fL49T65ML6VTk2J/J+PPcTU/AVLyeE/l6xRqyC
oCZ9OnYL+Xo+X2JM7qULDE8jbl638jHoqT0t02lviXQT4nnM47LlHkYwbkDzRa06
rU8onD3uiViMhSUex98ZcjngFPiaWyMVa1vqp5r21vVZr7+Bel6kDg==
-----END RSA PRIVATE KEY-----
`

var (
	simKeyOnce sync.Once
	simKey     *rsa.PrivateKey
)

func simulatorKey() *rsa.PrivateKey {
	simKeyOnce.Do(func() {
		block, _ := pem.Decode([]byte(simKeyPEM))
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			panic("sim: bad built-in key: " + err.Error())
		}
		simKey = k
	})
	return simKey
}

// NewCertificate makes a real, self-signed X.509 certificate (RSA 2048) as
// New-ExchangeCertificate would, identified by serial so that two calls
// with the same validity still differ.
func NewCertificate(subject string, serial int64, notBefore, notAfter time.Time) *ExchangeCertificate {
	k := simulatorKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: subject},
		NotBefore:    notBefore.UTC().Truncate(time.Second),
		NotAfter:     notAfter.UTC().Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic("sim: create certificate: " + err.Error())
	}
	return &ExchangeCertificate{
		Thumbprint: certs.Thumbprint(der),
		Subject:    "CN=" + subject,
		NotBefore:  tmpl.NotBefore,
		NotAfter:   tmpl.NotAfter,
		Exportable: true,
		KeySize:    k.N.BitLen(),
		DER:        der,
	}
}

// AuthCertificateSubject is the subject Microsoft's procedure gives a new
// auth certificate (docs/microsoft-behaviour.md, "The auth certificate's life").
const AuthCertificateSubject = "Microsoft Exchange Server Auth Certificate"

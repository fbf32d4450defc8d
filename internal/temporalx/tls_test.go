package temporalx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/temporalx"
)

// TestMTLSToTemporal puts a TLS-terminating proxy that requires and
// verifies client certificates (what a production frontend or Temporal
// Cloud does) in front of the real dev server, whose CLI has no TLS
// flags, and connects through it with temporalx.Dial exactly as a worker
// configured with temporal.tls does. With the CA and a client certificate
// the health check passes; without the certificate, with a certificate
// from another CA, without trusting the server's CA, or in plaintext, the
// connection is refused.
func TestMTLSToTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	dir := t.TempDir()
	ca := newCA(t, "hybridflow test CA")
	rogue := newCA(t, "someone else's CA")
	serverCert := ca.issue(t, "temporal.test", false)
	good := ca.issue(t, "hybridflow-worker", true)
	bad := rogue.issue(t, "hybridflow-worker", true)
	files := map[string]string{
		"ca.pem": ca.certPEM, "client.pem": good.certPEM, "client.key": good.keyPEM,
		"rogue-ca.pem": rogue.certPEM, "rogue.pem": bad.certPEM, "rogue.key": bad.keyPEM,
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	for name, content := range files {
		if err := os.WriteFile(path(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	px := startProxy(t, serverCert.pair(t), ca.pool(), srv.FrontendHostPort())
	defer px.close()

	dial := func(tc *config.TLSConfig) (client.Client, error) {
		dctx, dcancel := context.WithTimeout(ctx, 4*time.Second)
		defer dcancel()
		return temporalx.Dial(dctx, config.TemporalConfig{Address: px.addr, Namespace: "default", TLS: tc}, zap.NewNop(), func(string) string { return "" })
	}

	t.Run("client certificate accepted", func(t *testing.T) {
		start := time.Now()
		c, err := dial(&config.TLSConfig{CAFile: path("ca.pem"), CertFile: path("client.pem"), KeyFile: path("client.key"), ServerName: "temporal.test"})
		if err != nil {
			t.Fatalf("mTLS dial: %v", err)
		}
		defer c.Close()
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			t.Fatalf("health over mTLS: %v", err)
		}
		ok, refused := px.counts()
		if ok == 0 {
			t.Fatalf("the proxy saw no verified handshake (refused %d)", refused)
		}
		t.Logf("CheckHealth through the mTLS proxy OK in %s; proxy: %d verified handshake(s)", time.Since(start).Round(time.Millisecond), ok)
	})

	refusals := []struct {
		name string
		tls  *config.TLSConfig
		// proxySees is what the proxy's handshake error says (any of);
		// nil when the client gives up first (it does not trust the server).
		proxySees []string
	}{
		{"no client certificate", &config.TLSConfig{CAFile: path("ca.pem"), ServerName: "temporal.test"}, []string{"didn't provide a certificate"}},
		// Go's client does not even send a certificate the server's CA list
		// does not name; others send it and meet "unknown certificate authority".
		{"certificate from another CA", &config.TLSConfig{CAFile: path("ca.pem"), CertFile: path("rogue.pem"), KeyFile: path("rogue.key"), ServerName: "temporal.test"}, []string{"unknown certificate authority", "didn't provide a certificate"}},
		{"server CA not trusted", &config.TLSConfig{CAFile: path("rogue-ca.pem"), CertFile: path("client.pem"), KeyFile: path("client.key"), ServerName: "temporal.test"}, nil},
		{"wrong server name", &config.TLSConfig{CAFile: path("ca.pem"), CertFile: path("client.pem"), KeyFile: path("client.key"), ServerName: "other.test"}, nil},
		{"plaintext", nil, []string{"first record does not look like a TLS handshake"}},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			before, _ := px.counts()
			px.resetErrors()
			start := time.Now()
			c, err := dial(tc.tls)
			if err == nil {
				_, herr := c.CheckHealth(ctx, &client.CheckHealthRequest{})
				c.Close()
				if herr == nil {
					t.Fatal("connected and healthy without valid mTLS")
				}
				err = herr
			}
			after, _ := px.counts()
			if after != before {
				t.Fatalf("the proxy verified %d handshake(s) for a refused client", after-before)
			}
			// With TLS 1.3 the client's side of the handshake can end
			// before the proxy has checked its certificate: the proxy's
			// error may be recorded a moment after the client's.
			seen := strings.Join(px.errorsSeen(), "\n")
			sees := func() bool {
				return slices.ContainsFunc(tc.proxySees, func(s string) bool { return strings.Contains(seen, s) })
			}
			for wait := time.Now().Add(5 * time.Second); tc.proxySees != nil && !sees() && time.Now().Before(wait); {
				time.Sleep(20 * time.Millisecond)
				seen = strings.Join(px.errorsSeen(), "\n")
			}
			if tc.proxySees != nil && !sees() {
				t.Fatalf("proxy handshake errors %q, want one containing one of %q", seen, tc.proxySees)
			}
			msg := err.Error()
			if i := strings.Index(msg, "desc = "); i >= 0 {
				msg = msg[i+len("desc = "):]
			}
			msg, _, _ = strings.Cut(msg, " — ")
			t.Logf("refused in %s: %s", time.Since(start).Round(time.Millisecond), msg)
		})
	}
}

// proxy terminates TLS with client-certificate verification and forwards
// the plaintext stream to the dev server.
type proxy struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup

	mu      sync.Mutex
	ok      int
	refused int
	errs    []string
}

func startProxy(t *testing.T, cert tls.Certificate, clientCAs *x509.CertPool, backend string) *proxy {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"}, // gRPC insists on ALPN h2
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(conn.(*tls.Conn), backend)
			}()
		}
	}()
	return p
}

func (p *proxy) serve(conn *tls.Conn, backend string) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := conn.Handshake(); err != nil {
		p.mu.Lock()
		p.refused++
		p.errs = append(p.errs, err.Error())
		p.mu.Unlock()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	p.mu.Lock()
	p.ok++
	p.mu.Unlock()
	up, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done
}

func (p *proxy) counts() (ok, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.refused
}

func (p *proxy) resetErrors() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = nil
}

func (p *proxy) errorsSeen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

func (p *proxy) close() {
	_ = p.ln.Close()
	// Forwarded streams end when the clients close; do not wait on them.
}

type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM string
}

type issued struct{ certPEM, keyPEM string }

func (i issued) pair(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair([]byte(i.certPEM), []byte(i.keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue signs a client (clientAuth) or server (serverAuth, for the name
// and 127.0.0.1) certificate.
func (ca *testCA) issue(t *testing.T, name string, forClient bool) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if forClient {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{name}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return issued{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})),
	}
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

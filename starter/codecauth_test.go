package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
)

// codecEnv is an environment with one random codec key, k1.
func codecEnv(t *testing.T) (map[string]string, []byte) {
	t.Helper()
	k := make([]byte, codec.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return map[string]string{config.EnvCodecKeys: "k1=env:HF_TEST_KEY", "HF_TEST_KEY": base64.StdEncoding.EncodeToString(k)}, k
}

// startCodecServer runs `hybridflow codec-server args...` until the test
// ends and returns the URL it listens on, reached through 127.0.0.1.
func startCodecServer(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	exited := make(chan struct{})
	code := 0
	go func() {
		defer close(exited)
		code = run(ctx, append([]string{"codec-server"}, args...), &out, &errb, func(n string) string { return env[n] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("codec-server did not stop")
		}
	})
	addrRE := regexp.MustCompile(`listening on (https?)://[^ ]*:(\d+) `)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			return m[1] + "://127.0.0.1:" + m[2]
		}
		select {
		case <-exited:
			t.Fatalf("codec-server exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address printed: %q %q", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decodeVia asks the codec server to decode a payload sealed with key and
// returns the HTTP status (0 when no answer came) and whether the clear
// value came back.
func decodeVia(t *testing.T, hc *http.Client, base string, key []byte, header http.Header) (int, bool) {
	t.Helper()
	c, err := codec.New("k1", []codec.Key{{ID: "k1", Secret: key}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := converter.GetDefaultDataConverter().ToPayload("contoso.onmicrosoft.com")
	sealed, _ := c.Encode([]*commonpb.Payload{p})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	req, _ := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte(`"contoso.onmicrosoft.com"`)))
}

// TestCodecServerBeyondLoopbackNeedsAuth: listening beyond loopback
// without a bearer token or client certificates is refused before any key
// is read, naming the flags that would allow it; --allow-remote, which
// used to be enough, no longer is. Bad flag combinations are refused by
// flag.
func TestCodecServerBeyondLoopbackNeedsAuth(t *testing.T) {
	env, _ := codecEnv(t)
	getenv := func(n string) string { return env[n] }
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:0"},
		{"--listen", "0.0.0.0:0", "--allow-remote"},
		{"--listen", "[::]:0", "--allow-remote"},
		{"--listen", ":0", "--allow-remote"},
		{"--listen", "192.0.2.1:0", "--allow-remote"},
	} {
		// A server that starts anyway serves until the deadline and
		// exits 0.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"codec-server"}, args...), &out, &errb, getenv)
		cancel()
		if code == 0 || !strings.Contains(errb.String(), "not a loopback address") ||
			!strings.Contains(errb.String(), "--auth-token") || !strings.Contains(errb.String(), "--tls-client-ca") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	env["HF_SHORT"] = "hunter2"
	for flagName, args := range map[string][]string{
		"--auth-token":    {"--listen", "0.0.0.0:0", "--auth-token", "hunter2-is-my-password-ok"},
		"--auth-token ":   {"--listen", "0.0.0.0:0", "--auth-token", "env:HF_SHORT"},
		"--tls-key":       {"--listen", "0.0.0.0:0", "--tls-cert", "cert.pem", "--auth-token", "env:HF_TEST_KEY"},
		"--tls-cert":      {"--listen", "0.0.0.0:0", "--tls-key", "key.pem", "--auth-token", "env:HF_TEST_KEY"},
		"--tls-client-ca": {"--listen", "0.0.0.0:0", "--tls-client-ca", "ca.pem"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"codec-server"}, args...), &out, &errb, getenv)
		cancel()
		if code == 0 || !strings.Contains(errb.String(), strings.TrimSpace(flagName)) || strings.Contains(errb.String(), "hunter2") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// TestCodecServerBearerToken: with --auth-token the codec server listens
// beyond loopback and decrypts only for requests that carry the token;
// a CORS preflight, which browsers send without credentials, is answered
// without decrypting anything.
func TestCodecServerBearerToken(t *testing.T) {
	env, key := codecEnv(t)
	token := base64.StdEncoding.EncodeToString(key[:24]) + "tok"
	env["HF_CODEC_TOKEN"] = token
	base := startCodecServer(t, env, "--listen", "0.0.0.0:0", "--auth-token", "env:HF_CODEC_TOKEN")
	for name, h := range map[string]http.Header{
		"no token":    nil,
		"wrong token": {"Authorization": {"Bearer " + token + "x"}},
		"basic":       {"Authorization": {"Basic " + token}},
	} {
		if code, clear := decodeVia(t, http.DefaultClient, base, key, h); code != http.StatusUnauthorized || clear {
			t.Errorf("%s: %d, clear %v", name, code, clear)
		}
	}
	if code, clear := decodeVia(t, http.DefaultClient, base, key, http.Header{"Authorization": {"Bearer " + token}}); code != 200 || !clear {
		t.Fatalf("with the token: %d, clear %v", code, clear)
	}
	req, _ := http.NewRequest(http.MethodOptions, base+"/decode", nil)
	req.Header.Set("Origin", "http://localhost:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}
}

// TestCodecServerMutualTLS: with --tls-cert, --tls-key and --tls-client-ca
// the codec server listens beyond loopback over HTTPS and serves only
// clients that present a certificate issued by that CA.
func TestCodecServerMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t, "hybridflow test client CA")
	other, otherKey := newCA(t, "some other CA")
	serverCA, serverCAKey := newCA(t, "hybridflow test server CA")
	write := func(name string, blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, bl := range blocks {
			_ = pem.Encode(&b, bl)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, srvKey := issue(t, serverCA, serverCAKey, "codec server", x509.ExtKeyUsageServerAuth)
	cli, cliKey := issue(t, ca, caKey, "operator", x509.ExtKeyUsageClientAuth)
	stranger, strangerKey := issue(t, other, otherKey, "stranger", x509.ExtKeyUsageClientAuth)
	env, key := codecEnv(t)
	base := startCodecServer(t, env, "--listen", "0.0.0.0:0",
		"--tls-cert", write("server.pem", certBlock(srvCert)), "--tls-key", write("server.key", keyBlock(t, srvKey)),
		"--tls-client-ca", write("clients.pem", certBlock(ca)))
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listening on %s, want https", base)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA)
	client := func(cert *x509.Certificate, k *ecdsa.PrivateKey) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: k}}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	if code, clear := decodeVia(t, client(nil, nil), base, key, nil); code != 0 || clear {
		t.Errorf("without a client certificate: %d, clear %v", code, clear)
	}
	if code, clear := decodeVia(t, client(stranger, strangerKey), base, key, nil); code != 0 || clear {
		t.Errorf("with another CA's certificate: %d, clear %v", code, clear)
	}
	if code, clear := decodeVia(t, client(cli, cliKey), base, key, nil); code != 200 || !clear {
		t.Fatalf("with the client certificate: %d, clear %v", code, clear)
	}
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func certBlock(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }

func keyBlock(t *testing.T, k *ecdsa.PrivateKey) *pem.Block {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

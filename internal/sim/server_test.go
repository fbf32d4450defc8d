package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestServerTLSAndRouting(t *testing.T) {
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	// A handler registered the way exo.go registers InvokeCommand.
	extraHandlers["/zz-test/"] = func(*World) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(rw, "extra "+r.URL.Path) })
	}
	defer delete(extraHandlers, "/zz-test/")
	s, err := Start(context.Background(), w, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	get := func(c *http.Client, path string) (int, string, error) {
		resp, err := c.Get(s.BaseURL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if code, body, err := get(s.Client, "/zz-test/ping"); err != nil || code != 200 || body != "extra /zz-test/ping" {
		t.Fatalf("extra handler: %d %q %v", code, body, err)
	}
	if code, _, err := get(s.Client, "/v1.0/domains"); err != nil || code != 401 {
		t.Fatalf("graph without token: %d %v", code, err)
	}
	if code, _, err := get(s.Client, "/"+smallGlobal+"/v2.0/.well-known/openid-configuration"); err != nil || code != 200 {
		t.Fatalf("token service: %d %v", code, err)
	}
	// Clients must trust the CA: the system roots do not.
	if _, _, err := get(&http.Client{Timeout: 5 * time.Second}, "/v1.0/domains"); err == nil {
		t.Fatal("a client without the simulator CA connected")
	}
	// The PEM works for clients configured by file.
	block, _ := pem.Decode(s.CAPEM())
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA PEM: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	fromPEM := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	if code, _, err := get(fromPEM, "/v1.0/domains"); err != nil || code != 401 {
		t.Fatalf("client from PEM: %d %v", code, err)
	}
	if !s.CAPool().Equal(s.CA.Pool) || s.GraphURL() != s.BaseURL+"/v1.0" || s.AuthorityHost() != s.BaseURL+"/" {
		t.Fatal("accessors disagree")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(fromPEM, "/v1.0/domains"); err == nil {
		t.Fatal("server still answers after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestServerStopsWithContext(t *testing.T) {
	w, err := Load(smallWorldPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, w, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: s.Transport(), Timeout: 2 * time.Second}
	cancel()
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := client.Get(s.BaseURL + "/v1.0/domains")
		if err != nil {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still serving after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartRejects(t *testing.T) {
	if _, err := Start(context.Background(), nil, ServerOptions{}); err == nil {
		t.Fatal("nil world accepted")
	}
	if _, err := Start(context.Background(), &World{}, ServerOptions{Addr: "no-port"}); err == nil {
		t.Fatal("bad address accepted")
	}
}

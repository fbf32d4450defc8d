package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hybridflow/hybridflow/internal/backend"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/devserver"
	"github.com/hybridflow/hybridflow/internal/sim"
	"github.com/hybridflow/hybridflow/internal/temporalx"
	"github.com/hybridflow/hybridflow/internal/workerhost"
	"github.com/hybridflow/hybridflow/workflows"
)

// TestNoSecretInLogsOrHistory runs a worker the
// way serve() builds one, except that the simulated backend authenticates
// like a real one: tenant 1 with a client secret (env: reference), tenant
// 3 with a client certificate (file: reference, PEM with its private key),
// both against the simulator's Entra token endpoint, which checks the
// secret and records every bearer token it issues. Setup runs for both
// tenants on the real dev server. Every log line the worker wrote (hybridflow's
// and the Temporal SDK's, at debug level) and the full history of every
// workflow in the namespace are then searched, as raw bytes and as
// hex/base64/JSON-escaped encodings, for the client secret, every issued
// token, the client certificate's private key and the private key of the
// on-prem Exchange auth certificate. A planted sub-test proves the search
// finds each of them when they are there.
func TestNoSecretInLogsOrHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts the Temporal dev server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	const (
		secretTenant = "22222222-2222-4222-8222-000000000001"
		certTenant   = "22222222-2222-4222-8222-000000000003"
		secretApp    = "33333333-3333-4333-8333-00000000000a"
		certApp      = "33333333-3333-4333-8333-00000000000b"
	)
	// Shaped like an Entra secret (ID~value) and unique to this run.
	clientSecret := "Hf8Q~" + randToken(t, 30)
	certKey, certPEM := clientCertificate(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HF_TEST_CLIENT_SECRET": clientSecret}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.ParseWorkerConfig("secrets-test.yaml", fmt.Appendf(nil, `temporal:
  address: %s
  namespace: default
roles: [cloud]
log_level: debug
credentials:
  default:
    kind: client-secret
    client_id: %s
    secret: env:HF_TEST_CLIENT_SECRET
  by-cert:
    kind: client-certificate
    client_id: %s
    certificate: file:%s
`, srv.FrontendHostPort(), secretApp, certApp, certFile), getenv)
	if err != nil {
		t.Fatal(err)
	}

	// Every log line, JSON-encoded exactly as a log file would hold it.
	var logs lockedBuffer
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&logs), zapcore.DebugLevel))

	w, err := sim.Load(filepath.Join("..", "configs", "sim", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	authKey := simAuthKey(t, w, secretTenant)
	be, err := backend.NewSimulated(ctx, w, logger, backend.SimOptions{Credentials: &backend.SimCredentials{
		Config: cfg, Getenv: getenv, ClientSecrets: map[string]string{secretApp: clientSecret},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	c, err := temporalx.Dial(ctx, cfg.Temporal, logger, getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := workerhost.Start(c, withWorldSites(cfg.Roles, w.Inventory()), workerhost.ForBackend(be, "worker@secrets-test"), logger, workerhost.Options{Identity: "worker@secrets-test"})
	if err != nil {
		t.Fatal(err)
	}

	retry := workflows.RetryOptions{InitialInterval: 100 * time.Millisecond, MaximumInterval: time.Second, MaximumAttempts: 5}
	var runs []client.WorkflowRun
	for _, tc := range []struct{ tenant, credential string }{{secretTenant, ""}, {certTenant, "by-cert"}} {
		tn, ok := w.Inventory().LookupByID(tc.tenant)
		if !ok {
			t.Fatalf("tenant %s not in the world", tc.tenant)
		}
		tn.Credential = tc.credential
		in := workflows.InputFromTenant(tn, workflows.SetupOptions{Retry: retry})
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SetupWorkflowID(tc.tenant), TaskQueue: temporalx.CloudQueue,
			WorkflowExecutionTimeout: 3 * time.Minute}, workflows.Setup, in)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	for _, run := range runs {
		var res workflows.SetupResult
		gctx, gcancel := context.WithTimeout(ctx, 100*time.Second)
		err := run.Get(gctx, &res)
		gcancel()
		if err != nil {
			if v, qerr := c.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryState); qerr == nil {
				var st workflows.SetupState
				_ = v.Get(&st)
				t.Logf("state of %s: %s at %s, paused %+v, verification %v, warnings %v", run.GetID(), st.State, st.CurrentStep, st.Paused, st.Verification, st.Warnings)
			}
			t.Fatalf("%s: %v", run.GetID(), err)
		}
		if res.State != workflows.StateVerified {
			t.Fatalf("%s ended %s: %+v", run.GetID(), res.State, res)
		}
		t.Logf("%s verified, %d writes", run.GetID(), res.Writes)
	}
	h.Stop()

	// The credentials were really used: the token endpoint issued tokens
	// to both applications, by secret and by signed assertion.
	grants := be.Sim.Servers.TokenGrants()
	byMethod := map[string]int{}
	var tokens []string
	for _, g := range grants {
		byMethod[g.ClientID+" "+g.Method]++
		tokens = append(tokens, g.AccessToken)
	}
	if byMethod[secretApp+" client_secret"] < 2 || byMethod[certApp+" client_assertion"] < 2 {
		t.Fatalf("token grants %v: want tokens for Graph and Exchange Online by secret (%s) and by certificate (%s)", byMethod, secretApp, certApp)
	}
	t.Logf("token endpoint issued %d bearer tokens: %v", len(tokens), byMethod)

	secrets := []secret{{"client secret", []byte(clientSecret)}}
	for i, tok := range tokens {
		secrets = append(secrets, secret{fmt.Sprintf("bearer token %d", i+1), []byte(tok)})
	}
	secrets = append(secrets, privateKeyParts("client certificate key", certKey)...)
	secrets = append(secrets, privateKeyParts("on-prem auth certificate key", authKey)...)

	// Every workflow in the namespace: what the run left in Temporal.
	haystacks := map[string][]byte{"worker log": logs.Bytes()}
	ids := allWorkflows(t, ctx, c, len(runs))
	for _, id := range ids {
		var raw, js bytes.Buffer
		it := c.GetWorkflowHistory(ctx, id[0], id[1], false, 0)
		n := 0
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			n++
			b, _ := proto.Marshal(e)
			raw.Write(b)
			j, _ := protojson.Marshal(e)
			js.Write(j)
		}
		// A tenant lock's history is short by design (started with its
		// input, a workflow task or part of one, terminated by its
		// setup's close); every other run must have left a real history
		// to search.
		least := 10
		if strings.HasPrefix(id[0], workflows.TenantLockWorkflowID("")) {
			least = 3
		}
		if n < least {
			t.Fatalf("history of %s has only %d events", id[0], n)
		}
		haystacks["history "+id[0]+" (protobuf)"] = raw.Bytes()
		haystacks["history "+id[0]+" (JSON)"] = js.Bytes()
	}
	if logs.Len() < 10_000 || !bytes.Contains(logs.Bytes(), []byte(`"logger":"temporal`)) {
		t.Fatalf("only %d bytes of logs, or no Temporal SDK lines: the search would see too little", logs.Len())
	}
	var total int
	for _, h := range haystacks {
		total += len(h)
	}
	t.Logf("searched %d workflows, %d bytes of logs (%d lines), %d bytes in all, for %d secrets in %d encodings each",
		len(ids), logs.Len(), bytes.Count(logs.Bytes(), []byte("\n")), total, len(secrets), len(encodings(secrets[0].value)))

	for _, f := range findSecrets(haystacks, secrets) {
		t.Errorf("leak: %s", f)
	}

	// The search must be able to fail: plant each kind of secret, in each
	// kind of place and encoding, and expect it found.
	t.Run("planted secrets are found", func(t *testing.T) {
		var planted lockedBuffer
		pl := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&planted), zapcore.DebugLevel))
		pl.Debug("token acquired", zap.String("authorization", "Bearer "+tokens[len(tokens)-1]))
		pl.Info("credential", zap.Binary("secret", []byte("x"+clientSecret))) // base64, off alignment
		pl.Warn("key", zap.String("d", hex.EncodeToString(authKey.D.Bytes())))
		pl.Error("pem", zap.String("pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, certKey)}))))
		for i, want := range []string{"bearer token " + fmt.Sprint(len(tokens)), "client secret", "on-prem auth certificate key", "client certificate key"} {
			line := bytes.Split(planted.Bytes(), []byte("\n"))[i]
			found := findSecrets(map[string][]byte{"planted": line}, secrets)
			if len(found) == 0 || !strings.Contains(strings.Join(found, "\n"), want) {
				t.Errorf("planted %s in %s; search found %q", want, line[:min(len(line), 80)], found)
			}
		}
		// In a history: a token inside an activity's JSON result.
		res := fmt.Sprintf(`{"type":"json/plain","data":%q}`, base64.StdEncoding.EncodeToString([]byte(`{"token":"`+tokens[0]+`"}`)))
		if found := findSecrets(map[string][]byte{"history": []byte(res)}, secrets); len(found) == 0 {
			t.Errorf("token in a base64 payload not found")
		}
	})
}

type secret struct {
	name  string
	value []byte
}

// findSecrets reports every secret found in any haystack in any encoding.
func findSecrets(haystacks map[string][]byte, secrets []secret) []string {
	var out []string
	names := make([]string, 0, len(haystacks))
	for n := range haystacks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, s := range secrets {
		for _, e := range encodings(s.value) {
			for _, n := range names {
				if i := bytes.Index(haystacks[n], e.value); i >= 0 {
					out = append(out, fmt.Sprintf("%s (%s) in %s at byte %d", s.name, e.name, n, i))
				}
			}
		}
	}
	return out
}

// encodings are the forms a secret takes when it is logged or stored:
// raw, hex in both cases, JSON- and Go-quoted, and base64 (standard and
// URL alphabets) at each of the three alignments it can have inside a
// longer encoded blob; for those the groups that mix in neighbouring
// bytes are cut off.
func encodings(v []byte) []secret {
	out := []secret{
		{"raw", v},
		{"hex", []byte(hex.EncodeToString(v))},
		{"HEX", []byte(strings.ToUpper(hex.EncodeToString(v)))},
	}
	if q := fmt.Sprintf("%q", v); q[1:len(q)-1] != string(v) {
		out = append(out, secret{"quoted", []byte(q[1 : len(q)-1])})
	}
	for _, b64 := range []struct {
		name string
		enc  *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for pad := 0; pad < 3; pad++ {
			s := b64.enc.EncodeToString(append(make([]byte, pad), v...))
			s = strings.TrimRight(s, "=")
			from := 0
			if pad > 0 {
				from = 4
			}
			to := len(s) - len(s)%4
			if to == len(s) {
				to -= 4 // the last full group may still continue differently
			}
			if to-from >= 8 {
				out = append(out, secret{fmt.Sprintf("%s+%d", b64.name, pad), []byte(s[from:to])})
			}
		}
	}
	return out
}

// privateKeyParts are the private halves of an RSA key as they could leak:
// the PKCS#1 and PKCS#8 DER, the private exponent, the primes and the CRT
// values, and the PEM lines of the DER that hold only private material.
// The modulus and public exponent are public (every certificate carries
// them), so PEM lines covering them are not searched for.
func privateKeyParts(name string, k *rsa.PrivateKey) []secret {
	k.Precompute()
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	out := []secret{
		{name + " PKCS#1 DER", pkcs1},
		{name + " PKCS#8 DER", pkcs8},
		{name + " D", k.D.Bytes()},
		{name + " Dp", k.Precomputed.Dp.Bytes()},
		{name + " Dq", k.Precomputed.Dq.Bytes()},
		{name + " Qinv", k.Precomputed.Qinv.Bytes()},
	}
	for i, p := range k.Primes {
		out = append(out, secret{fmt.Sprintf("%s prime %d", name, i+1), p.Bytes()})
	}
	// A PEM body is base64 of the DER in 64-character lines (48 bytes each).
	for _, der := range []struct {
		form string
		b    []byte
	}{{"PKCS#1", pkcs1}, {"PKCS#8", pkcs8}} {
		private := bytes.Index(der.b, k.D.Bytes())
		body := base64.StdEncoding.EncodeToString(der.b)
		for i := 0; i+64 <= len(body); i += 64 {
			if i/4*3 >= private {
				out = append(out, secret{fmt.Sprintf("%s %s PEM line %d", name, der.form, i/64+1), []byte(body[i : i+64])})
			}
		}
	}
	return out
}

// simAuthKey is the private key of the tenant's on-prem Exchange auth
// certificate. The simulator signs every certificate with one built-in key
// that it does not export, so it is read from the simulator's source and
// checked against the certificate the world holds: if that ever stops
// matching, this test fails instead of searching for the wrong key.
func simAuthKey(t *testing.T, w *sim.World, tenant string) *rsa.PrivateKey {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "internal", "sim", "certs.go"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte("-----BEGIN RSA PRIVATE KEY-----"))
	if i < 0 {
		t.Fatal("no private key in internal/sim/certs.go")
	}
	block, _ := pem.Decode(src[i:])
	if block == nil {
		t.Fatal("undecodable private key in internal/sim/certs.go")
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	for _, tn := range w.Tenants {
		if !strings.EqualFold(tn.ID, tenant) {
			continue
		}
		for _, ec := range tn.OnPrem.Certificates {
			c, err := x509.ParseCertificate(ec.DER)
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := c.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&k.PublicKey) {
				t.Fatalf("certificate %s of %s is not backed by the simulator key", ec.Thumbprint, tenant)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no on-prem certificate for %s", tenant)
	}
	return k
}

// clientCertificate makes the client-certificate credential's key and the
// PEM file (certificate and PKCS#8 key) a worker would be given.
func clientCertificate(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hybridflow secrets test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Check(der, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, k)})...)
	return k, out
}

func mustPKCS8(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randToken(t *testing.T, n int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// allWorkflows lists every workflow execution (ID, run ID) in the
// namespace, waiting for visibility to show at least want of them.
func allWorkflows(t *testing.T, ctx context.Context, c client.Client, want int) [][2]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out [][2]string
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", NextPageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range resp.GetExecutions() {
				out = append(out, [2]string{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()})
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			if len(out) < want {
				t.Fatalf("visibility lists %d workflows, want at least %d", len(out), want)
			}
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockedBuffer is a log sink safe for the SDK's and the activities'
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

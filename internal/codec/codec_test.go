package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/config"
)

func key(t *testing.T, id string) Key {
	t.Helper()
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Secret: b}
}

const secretText = "contoso.onmicrosoft.com"

func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTripAndFormat(t *testing.T) {
	k1 := key(t, "k1")
	c, err := New("k1", []Key{k1})
	if err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{payload(t, map[string]string{"domain": secretText}), payload(t, nil)}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range enc {
		if !IsEncrypted(p) || string(p.Metadata[MetadataKeyID]) != "k1" {
			t.Fatalf("payload %d metadata %v", i, p.Metadata)
		}
		if bytes.Contains(p.Data, []byte(secretText)) || bytes.Contains(p.Data, []byte("json/plain")) {
			t.Fatalf("payload %d carries clear text", i)
		}
	}
	// Encoding is randomised: the same value seals differently each time.
	again, _ := c.Encode(in[:1])
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Fatal("two encodings of one payload are identical (nonce reuse?)")
	}
	// Sealed payloads are not sealed again.
	twice, _ := c.Encode(enc)
	if twice[0] != enc[0] {
		t.Fatal("an encrypted payload was encrypted again")
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &got); err != nil || got["domain"] != secretText {
		t.Fatalf("decoded %v, %v", got, err)
	}
	// A plaintext payload (history from before encryption) passes through.
	plain := payload(t, "old")
	out, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("plain payload: %v %v", out, err)
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := key(t, "k1"), key(t, "k2")
	old, _ := New("k1", []Key{k1})
	sealedOld, _ := old.Encode([]*commonpb.Payload{payload(t, "written before rotation")})

	rotated, err := New("k2", []Key{k2, k1})
	if err != nil {
		t.Fatal(err)
	}
	sealedNew, _ := rotated.Encode([]*commonpb.Payload{payload(t, "written after rotation")})
	if id := string(sealedNew[0].Metadata[MetadataKeyID]); id != "k2" {
		t.Fatalf("new payloads sealed with %q, want the active k2", id)
	}
	for _, p := range [][]*commonpb.Payload{sealedOld, sealedNew} {
		if _, err := rotated.Decode(p); err != nil {
			t.Fatalf("rotated codec cannot read: %v", err)
		}
	}
	// The old codec has never heard of k2: it says so, naming the key.
	_, err = old.Decode(sealedNew)
	if err == nil || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("old codec on a k2 payload: %v", err)
	}
}

func TestTamperingAndWrongKeys(t *testing.T) {
	k1 := key(t, "k1")
	c, _ := New("k1", []Key{k1})
	sealed, _ := c.Encode([]*commonpb.Payload{payload(t, secretText)})

	flipped := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: bytes.Clone(sealed[0].Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{flipped}); err == nil {
		t.Fatal("altered ciphertext decrypted")
	}
	// Same ID, other material (a key replaced instead of rotated).
	impostor, _ := New("k1", []Key{key(t, "k1")})
	if _, err := impostor.Decode(sealed); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Fatalf("wrong key material: %v", err)
	}
	// Relabelling the key ID breaks authentication too.
	k2 := Key{ID: "k2", Secret: k1.Secret}
	both, _ := New("k1", []Key{k1, k2})
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(Encoding), MetadataKeyID: []byte("k2")}, Data: sealed[0].Data}
	if _, err := both.Decode([]*commonpb.Payload{relabelled}); err == nil {
		t.Fatal("relabelled payload decrypted")
	}
	truncated := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: sealed[0].Data[:5]}
	if _, err := c.Decode([]*commonpb.Payload{truncated}); err == nil {
		t.Fatal("truncated payload decrypted")
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		active string
		keys   []Key
	}{
		"no keys":       {"k1", nil},
		"short key":     {"k1", []Key{{ID: "k1", Secret: make([]byte, 16)}}},
		"active absent": {"k9", []Key{key(t, "k1")}},
		"duplicate id":  {"k1", []Key{key(t, "k1"), key(t, "k1")}},
		"empty id":      {"", []Key{key(t, "")}},
	} {
		if _, err := New(tc.active, tc.keys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFromConfig(t *testing.T) {
	k1, k2 := key(t, "k1"), key(t, "k2")
	dir := t.TempDir()
	raw := filepath.Join(dir, "k1.bin")
	if err := os.WriteFile(raw, k1.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(k2.Secret)
	env := map[string]string{"HF_KEY2": b64 + "\n"}
	c, err := FromConfig(&config.CodecConfig{Active: "k2", Keys: []config.CodecKey{{ID: "k2", Key: "env:HF_KEY2"}, {ID: "k1", Key: "file:" + raw}}},
		func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.ActiveKeyID() != "k2" || strings.Join(c.KeyIDs(), ",") != "k2,k1" {
		t.Fatalf("codec %s %v", c.ActiveKeyID(), c.KeyIDs())
	}
	// What the file key sealed, the config-built codec opens.
	direct, _ := New("k1", []Key{k1})
	sealed, _ := direct.Encode([]*commonpb.Payload{payload(t, "x")})
	if _, err := c.Decode(sealed); err != nil {
		t.Fatal(err)
	}
	if c, err := FromConfig(nil, nil); c != nil || err != nil {
		t.Fatalf("nil config: %v %v", c, err)
	}
	// A value that is not 32 bytes is refused without being echoed.
	env["HF_KEY2"] = "not-a-key-but-a-password"
	_, err = FromConfig(&config.CodecConfig{Active: "k2", Keys: []config.CodecKey{{ID: "k2", Key: "env:HF_KEY2"}}}, func(k string) string { return env[k] })
	if err == nil || strings.Contains(err.Error(), "password") || !strings.Contains(err.Error(), "env:HF_KEY2") {
		t.Fatalf("bad key material: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	k := key(t, "k").Secret
	for name, in := range map[string][]byte{
		"std":     []byte(base64.StdEncoding.EncodeToString(k) + "\n"),
		"raw std": []byte(base64.RawStdEncoding.EncodeToString(k)),
		"url":     []byte("  " + base64.URLEncoding.EncodeToString(k) + "\r\n"),
		"binary":  k,
	} {
		got, err := ParseKey(in)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDataConverterEncryptsFailuresToo(t *testing.T) {
	c, _ := New("k1", []Key{key(t, "k1")})
	dc := DataConverter(c)
	p, err := dc.ToPayload(map[string]string{"domain": secretText})
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncrypted(p) {
		t.Fatalf("data converter did not encrypt: %v", p.Metadata)
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil || back["domain"] != secretText {
		t.Fatalf("round trip %v %v", back, err)
	}
	if DataConverter(nil) != converter.GetDefaultDataConverter() {
		t.Fatal("nil codec must give the default converter")
	}
}

func TestHTTPHandler(t *testing.T) {
	c, _ := New("k1", []Key{key(t, "k1")})
	srv := httptest.NewServer(HTTPHandler(c, HTTPOptions{AllowedOrigins: []string{"http://localhost:8233/"}}))
	defer srv.Close()
	sealed, _ := c.Encode([]*commonpb.Payload{payload(t, secretText)})
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, origin string, body []byte) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := post("/decode", "http://localhost:8233", body)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Fatalf("decode from the UI origin: %d %v", resp.StatusCode, resp.Header)
	}
	var out struct {
		Payloads []struct {
			Data []byte `json:"data"`
		} `json:"payloads"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Payloads) != 1 || !bytes.Contains(out.Payloads[0].Data, []byte(secretText)) {
		t.Fatalf("decoded %+v, %v", out, err)
	}

	// Preflight from the UI.
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", "http://localhost:8233")
	req.Header.Set("Access-Control-Request-Method", "POST")
	// The Web UI sends these when it forwards the operator's access token
	// (codec passAccessToken): Authorization, and the ID token as
	// Authorization-Extras.
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization,authorization-extras")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	allowed := strings.Split(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), ",")
	for i := range allowed {
		allowed[i] = strings.TrimSpace(allowed[i])
	}
	for _, h := range []string{"content-type", "x-namespace", "authorization", "authorization-extras"} {
		if !slices.Contains(allowed, h) {
			t.Errorf("preflight does not allow the Web UI's %s header: Access-Control-Allow-Headers %q", h, pre.Header.Get("Access-Control-Allow-Headers"))
		}
	}

	// Another web page may not use it.
	evil := post("/decode", "http://evil.example", body)
	evil.Body.Close()
	if evil.StatusCode != http.StatusForbidden || evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d %v", evil.StatusCode, evil.Header)
	}

	// No Origin (CLI): encode then decode round trip.
	plainBody, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{payload(t, "cli")}})
	enc := post("/encode", "", plainBody)
	defer enc.Body.Close()
	if enc.StatusCode != 200 {
		t.Fatalf("encode: %d", enc.StatusCode)
	}
	var encoded commonpb.Payloads
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(enc.Body)
	if err := protojson.Unmarshal(raw.Bytes(), &encoded); err != nil || !IsEncrypted(encoded.Payloads[0]) {
		t.Fatalf("encode answer: %v %v", encoded.Payloads, err)
	}
}

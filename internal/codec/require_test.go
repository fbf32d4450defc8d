package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/config"
)

// TestRequireRefusesUnsealedPayloads: a codec that requires encryption
// opens sealed payloads as before and refuses a plain one (what a client
// without the keys writes) with a *PlaintextError naming the option; the
// codec it was made from still passes plain payloads through.
func TestRequireRefusesUnsealedPayloads(t *testing.T) {
	lenient, err := New("k1", []Key{key(t, "k1")})
	if err != nil {
		t.Fatal(err)
	}
	strict := lenient.Require()
	if lenient.Required() || !strict.Required() || strict.Lenient().Required() {
		t.Fatal("Require / Lenient / Required disagree")
	}
	sealed, err := strict.Encode([]*commonpb.Payload{payload(t, secretText)})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := strict.Decode(sealed); err != nil || !bytes.Contains(out[0].Data, []byte(secretText)) {
		t.Fatalf("sealed payload: %v", err)
	}

	forged := payload(t, map[string]string{"site": "site-b"})
	_, err = strict.Decode([]*commonpb.Payload{sealed[0], forged})
	var pe *PlaintextError
	if !errors.As(err, &pe) || pe.Encoding != "json/plain" {
		t.Fatalf("plain payload after a sealed one: %v; want a *PlaintextError for json/plain", err)
	}
	if !strings.Contains(err.Error(), RequireOption) {
		t.Errorf("error %q does not name %s", err, RequireOption)
	}
	t.Logf("refused: %v", err)
	if _, err := strict.Decode([]*commonpb.Payload{{Data: []byte("x")}}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "encoding none") {
		t.Fatalf("payload without metadata: %v", err)
	}
	if out, err := lenient.Decode([]*commonpb.Payload{forged}); err != nil || out[0] != forged {
		t.Fatalf("the lenient codec: %v", err)
	}

	// Through the data converter, as the SDK decodes an input.
	var v map[string]string
	if err := DataConverter(strict).FromPayload(forged, &v); !errors.As(err, &pe) {
		t.Fatalf("data converter: %v", err)
	}
}

// TestFromConfigRequired: the loader's Required flag reaches the codec.
func TestFromConfigRequired(t *testing.T) {
	k := key(t, "k1")
	path := filepath.Join(t.TempDir(), "k1.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k.Secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, required := range []bool{false, true} {
		c, err := FromConfig(&config.CodecConfig{Active: "k1", Keys: []config.CodecKey{{ID: "k1", Key: "file:" + path}}, Required: required}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Decode([]*commonpb.Payload{payload(t, "plain")})
		if c.Required() != required || (err != nil) != required {
			t.Errorf("Required %v: codec Required() %v, decoding a plain payload: %v", required, c.Required(), err)
		}
	}
}

// TestFailureConverterPlaintextIsFinal: the SDK wraps a payload it cannot
// decode in its own error; the failure converter still finds the
// *PlaintextError and fails the task for good, with its own type.
func TestFailureConverterPlaintextIsFinal(t *testing.T) {
	c, _ := New("k1", []Key{key(t, "k1")})
	dc := DataConverter(c.Require())
	fc := FailureConverter(dc)
	wrapped := fmt.Errorf("unable to decode the activity function input payload with error: %w for function name: DiscoverOnPrem", &PlaintextError{Encoding: "json/plain"})
	f := fc.ErrorToFailure(wrapped)
	info := f.GetApplicationFailureInfo()
	if info == nil || !info.GetNonRetryable() || info.GetType() != PlaintextErrorType {
		t.Fatalf("failure %v; want a non-retryable %s", f, PlaintextErrorType)
	}
	// The message travels encrypted, like every other failure's.
	if f.GetMessage() != "Encoded failure" || f.GetEncodedAttributes() == nil {
		t.Fatalf("failure message %q is not encoded", f.GetMessage())
	}
	back := fc.FailureToError(f)
	var app *temporal.ApplicationError
	if !errors.As(back, &app) || app.Type() != PlaintextErrorType || !strings.Contains(back.Error(), RequireOption) {
		t.Fatalf("decoded back: %v", back)
	}
	// Other errors keep the default conversion (retryable).
	if info := fc.ErrorToFailure(errors.New("connection reset")).GetApplicationFailureInfo(); info.GetNonRetryable() {
		t.Fatalf("an ordinary error became non-retryable: %v", info)
	}
}

// TestHTTPHandlerShowsPlainPayloads: the codec server decodes for display
// and does not refuse plain payloads (version markers of old histories,
// say) even when built from a codec that requires encryption.
func TestHTTPHandlerShowsPlainPayloads(t *testing.T) {
	c, _ := New("k1", []Key{key(t, "k1")})
	srv := httptest.NewServer(HTTPHandler(c.Require(), HTTPOptions{}))
	defer srv.Close()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{payload(t, "plain value")}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/decode", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decode of a plain payload: %d", resp.StatusCode)
	}
}

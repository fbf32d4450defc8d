package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCodecServer runs `hybridflow codec-server` with keys from the
// environment and decodes, through its HTTP endpoint as the Web UI does,
// a payload the worker-side codec sealed.
func TestCodecServer(t *testing.T) {
	k := make([]byte, codec.KeySize)
	_, _ = rand.Read(k)
	env := map[string]string{config.EnvCodecKeys: "k1=env:HF_TEST_KEY", "HF_TEST_KEY": base64.StdEncoding.EncodeToString(k)}
	getenv := func(n string) string { return env[n] }

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"codec-server", "--listen", "127.0.0.1:0", "--ui-origin", "http://localhost:8233"}, &out, &errb, getenv)
	}()
	addrRE := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-exited:
			t.Fatalf("codec-server exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address printed: %q %q", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	c, err := codec.New("k1", []codec.Key{{ID: "k1", Secret: k}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := converter.GetDefaultDataConverter().ToPayload("contoso.onmicrosoft.com")
	sealed, _ := c.Encode([]*commonpb.Payload{p})
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	req, _ := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost:8233")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8233" || !strings.Contains(string(raw), base64.StdEncoding.EncodeToString([]byte(`"contoso.onmicrosoft.com"`))) {
		t.Fatalf("decode: %d %v %s", resp.StatusCode, resp.Header, raw)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("codec-server did not stop")
	}
}

func TestCodecServerRefusals(t *testing.T) {
	code, _, errOut := runCLI(t, "codec-server")
	if code == 0 || !strings.Contains(errOut, "no payload codec configured") {
		t.Fatalf("without keys: %d %q", code, errOut)
	}
	env, _ := codecEnv(t)
	var out, errb bytes.Buffer
	code = run(context.Background(), []string{"codec-server", "--listen", "0.0.0.0:0"}, &out, &errb, func(n string) string { return env[n] })
	if code == 0 || !strings.Contains(errb.String(), "not a loopback address") {
		t.Fatalf("remote listen: %d %q", code, errb.String())
	}
}

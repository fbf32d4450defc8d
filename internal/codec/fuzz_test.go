package codec

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// fuzzCodec has fixed keys so that corpus entries sealed under k1 stay
// decodable across runs; k0 is an old key that still decrypts.
func fuzzCodec(t testing.TB) *Codec {
	t.Helper()
	k0, k1 := bytes.Repeat([]byte{0x11}, KeySize), bytes.Repeat([]byte{0x22}, KeySize)
	c, err := New("k1", []Key{{ID: "k1", Secret: k1}, {ID: "k0", Secret: k0}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzDecode: whatever a history or the codec server hands Decode (any
// encoding, key ID and data) it never panics; a payload that claims to be
// sealed but was not sealed by us is refused, never returned as is.
func FuzzDecode(f *testing.F) {
	c := fuzzCodec(f)
	sealed, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(Encoding), []byte("k1"), sealed[0].Data)
	f.Add([]byte(Encoding), []byte("k0"), sealed[0].Data)
	f.Add([]byte(Encoding), []byte("k9"), sealed[0].Data)
	f.Add([]byte(Encoding), []byte("k1"), sealed[0].Data[:12])
	f.Add([]byte("json/plain"), []byte(""), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, encoding, keyID, data []byte) {
		in := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: encoding, MetadataKeyID: keyID}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{in})
		if !IsEncrypted(in) {
			if err != nil || len(out) != 1 || out[0] != in {
				t.Fatalf("a plain payload was not passed through: %v", err)
			}
			return
		}
		if err != nil {
			return
		}
		// Only a real seal opens: it must re-seal and open to the same.
		again, err := c.Encode(out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decode(again)
		if err != nil || !proto.Equal(back[0], out[0]) {
			t.Fatalf("decoded payload does not round-trip: %v", err)
		}
	})
}

// FuzzRoundTrip: any payload (metadata and data of any bytes) encodes to
// a sealed payload that carries none of the data in clear, decodes back
// to an equal payload, and fails to decode after any single bit flip.
func FuzzRoundTrip(f *testing.F) {
	c := fuzzCodec(f)
	f.Add("json/plain", []byte(`{"tenant":"contoso.onmicrosoft.com"}`), uint16(3))
	f.Add("binary/null", []byte{}, uint16(0))
	f.Add("", []byte("\x00\xff`$()\"'\n"), uint16(65535))
	f.Fuzz(func(t *testing.T, encoding string, data []byte, flip uint16) {
		in := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encoding), "extra": data}, Data: data}
		sealed, err := c.Encode([]*commonpb.Payload{in})
		if err != nil {
			t.Fatal(err)
		}
		s := sealed[0]
		if IsEncrypted(in) {
			// Already claims our encoding: left alone, never nested.
			if s != in {
				t.Fatal("a payload claiming to be sealed was sealed again")
			}
			return
		}
		if !IsEncrypted(s) || string(s.Metadata[MetadataKeyID]) != "k1" {
			t.Fatalf("not sealed with the active key: %v", s.Metadata)
		}
		if len(data) >= 8 && bytes.Contains(s.Data, data) {
			t.Fatal("the data is in the sealed payload in clear")
		}
		out, err := c.Decode(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(out[0], in) {
			t.Fatalf("round trip changed the payload: %v -> %v", in, out[0])
		}
		bad := bytes.Clone(s.Data)
		bit := int(flip) % (8 * len(bad))
		bad[bit/8] ^= 1 << (bit % 8)
		tampered := &commonpb.Payload{Metadata: s.Metadata, Data: bad}
		if _, err := c.Decode([]*commonpb.Payload{tampered}); err == nil {
			t.Fatalf("bit %d flipped and the payload still decoded", bit)
		}
		other := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte("k0")}, Data: s.Data}
		if _, err := c.Decode([]*commonpb.Payload{other}); err == nil {
			t.Fatal("relabelled with another key ID and still decoded")
		}
	})
}

// FuzzParseKey: key material from a file or variable either yields exactly
// KeySize bytes or an error that does not echo the material.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n"))
	f.Add(bytes.Repeat([]byte{0}, KeySize))
	f.Add([]byte("  not a key  "))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err != nil {
			if len(b) >= 8 && bytes.Contains([]byte(err.Error()), b) {
				t.Fatalf("error echoes the key material: %v", err)
			}
			return
		}
		if len(k) != KeySize {
			t.Fatalf("%d-byte key", len(k))
		}
	})
}

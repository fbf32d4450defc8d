package shell

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// hostileStrings are values that would change meaning if they were ever
// spliced into PowerShell text, plus framing hazards for a line protocol.
var hostileStrings = []string{
	"",
	"plain",
	`x'; Remove-Item C:\ -Recurse; '`,
	`"; Stop-Computer; "`,
	"`$(Get-Process)`",
	"$(Remove-Item C:\\)",
	"${env:PATH}",
	"line1\nline2\r\nline3",
	"nul\x00byte",
	"tab\tand\u2028separator\u2029",
	"@{a=1}",
	"-Confirm:$false",
	"日本語 ümlaut émoji 🎉",
	`\u0000 literal backslash-u`,
	strings.Repeat("long ", 2000),
}

func TestEncodeRequestNormalises(t *testing.T) {
	when := time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		value any
		want  any // after a JSON round trip
	}{
		{"string", "evoSTS", "evoSTS"},
		{"bool", true, true},
		{"int", 2048, float64(2048)},
		{"float", 1.5, 1.5},
		{"nil", nil, nil},
		{"time becomes RFC 3339 UTC", when, "2026-03-01T11:30:00Z"},
		{"string slice", []string{"a.com", "b.com"}, []any{"a.com", "b.com"}},
		{"empty slice stays an array", []string{}, []any{}},
		{"int slice through reflection", []int{1, 2}, []any{float64(1), float64(2)}},
		{"nested map", map[string]any{"add": []string{"x"}}, map[string]any{"add": []any{"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := encodeRequest(7, &exchange.Command{Cmdlet: "Set-AuthServer", Parameters: map[string]any{"Value": tt.value}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var req Request
			if err := json.Unmarshal(line, &req); err != nil {
				t.Fatal(err)
			}
			if req.ID != 7 || req.Cmdlet != "Set-AuthServer" {
				t.Fatalf("header: %+v", req)
			}
			if got := req.Parameters["Value"]; !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v want %#v", got, tt.want)
			}
		})
	}
}

func TestEncodeRequestRefuses(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string // in the message
	}{
		{"invalid UTF-8", map[string]any{"Name": "ok\xffno"}, `parameter "Name": value is not valid UTF-8`},
		{"invalid UTF-8 in a list", map[string]any{"DomainName": []string{"a", "\xc3"}}, `parameter "DomainName": element 1: value is not valid UTF-8`},
		{"invalid UTF-8 key", map[string]any{"H": map[string]any{"\xff": 1}}, `hashtable key is not valid UTF-8`},
		{"NaN", map[string]any{"X": math.NaN()}, "NaN"},
		{"bytes", map[string]any{"RawData": []byte{1, 2}}, "byte-array values are not supported"},
		{"struct", map[string]any{"X": struct{}{}}, "values of type struct {} are not supported"},
		{"parameter name with a space", map[string]any{"Name; rm": "x"}, "is not a valid PowerShell parameter name"},
		{"parameter name with a dash", map[string]any{"-Name": "x"}, "is not a valid PowerShell parameter name"},
		{"empty parameter name", map[string]any{"": "x"}, "is not a valid PowerShell parameter name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeRequest(1, &exchange.Command{Cmdlet: "New-AuthServer", Parameters: tt.params}, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !exchange.HasType(err, exchange.TypeParameterBinding) || exchange.Retryable(err) {
				t.Fatalf("want a non-retryable parameter error, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "New-AuthServer") {
				t.Fatalf("message %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestEncodeBatch(t *testing.T) {
	line, err := encodeRequest(3, nil, []exchange.Command{{Cmdlet: "Get-AuthServer"}, {Cmdlet: "Get-AuthConfig", Parameters: map[string]any{"A": "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":3,"batch":[{"cmdlet":"Get-AuthServer"},{"cmdlet":"Get-AuthConfig","parameters":{"A":"b"}}]}`
	if string(line) != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
	if _, err := encodeRequest(4, nil, nil); err == nil {
		t.Fatal("empty batch accepted")
	}
	if _, err := encodeRequest(5, nil, []exchange.Command{{Cmdlet: "Get-AuthServer", Parameters: map[string]any{"X": "\xff"}}}); err == nil {
		t.Fatal("invalid batch parameter accepted")
	}
}

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		kind    lineKind
		noProto bool
		bad     bool
	}{
		{"banner", "Windows PowerShell", 0, true, false},
		{"empty", "", 0, true, false},
		{"json without id", `{"foo":1}`, 0, true, false},
		{"broken json", `{"id":1,`, 0, true, false},
		{"json array", `[1,2]`, 0, true, false},
		{"ready", `{"ready":true,"version":1,"session":"s"}`, lineReady, false, false},
		{"reply", `{"id":4,"rows":[{"Name":"evoSTS"}],"error":null}`, lineReply, false, false},
		{"reply with CRLF", "{\"id\":4,\"rows\":[]}\r", lineReply, false, false},
		{"error without type", `{"id":4,"error":{"message":"x"}}`, lineReply, false, true},
		{"batch error without type", `{"id":4,"results":[{"rows":[],"error":{"message":"x"}}]}`, lineReply, false, true},
		{"rows not objects", `{"id":4,"rows":["a"]}`, lineReply, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, _, _, err := decodeLine([]byte(tt.line))
			switch {
			case tt.noProto:
				if !errors.Is(err, errNotProtocol) {
					t.Fatalf("want errNotProtocol, got %v", err)
				}
			case tt.bad:
				if err == nil || errors.Is(err, errNotProtocol) {
					t.Fatalf("want a decode error, got %v", err)
				}
			default:
				if err != nil || kind != tt.kind {
					t.Fatalf("kind %v err %v", kind, err)
				}
			}
		})
	}
}

func TestDecodeReplyTypes(t *testing.T) {
	r, err := decodeReply([]byte(`{"id":9,"rows":null,"error":{"type":"Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException","message":"exists","category":"ResourceExists"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !exchange.IsAlreadyExists(r.Error) || r.Error.Category != "ResourceExists" || r.Rows != nil {
		t.Fatalf("%+v", r)
	}
}

// FuzzCodecRoundTrip: any parameter name/value either travels unchanged
// (request: Go -> host; reply: host -> Go), on exactly one line, or is
// refused with a parameter error for a documented reason.
func FuzzCodecRoundTrip(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add("Name", s)
	}
	f.Add("Name", "\xff\xfe")
	f.Add("Bad Name", "x")
	f.Fuzz(func(t *testing.T, name, value string) {
		if name == "List" {
			return // the second parameter's name; a map cannot hold both
		}
		cmd := exchange.Command{Cmdlet: "New-AuthServer", Parameters: map[string]any{name: value, "List": []string{value, "x"}}}
		line, err := encodeRequest(42, &cmd, nil)
		validName := paramNameRE.MatchString(name)
		if !validName || !utf8.ValidString(value) {
			if err == nil {
				t.Fatalf("accepted name %q value %q", name, value)
			}
			if !exchange.HasType(err, exchange.TypeParameterBinding) {
				t.Fatalf("refusal is not a parameter error: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a valid parameter: %v", err)
		}
		if strings.ContainsAny(string(line), "\r\n") {
			t.Fatalf("request spans lines: %q", line)
		}
		var req Request
		if err := json.Unmarshal(line, &req); err != nil {
			t.Fatal(err)
		}
		if req.Parameters[name] != value {
			t.Fatalf("value changed: %q -> %q", value, req.Parameters[name])
		}
		if l, ok := req.Parameters["List"].([]any); !ok || len(l) != 2 || l[0] != value {
			t.Fatalf("list changed: %#v", req.Parameters["List"])
		}

		// Reply direction: the value as a row field and in an error message.
		reply, err := json.Marshal(Reply{ID: 42, Rows: []exchange.Row{{name: value}}, Results: []exchange.Result{{Error: &exchange.Error{Type: exchange.TypeNotFound, Message: value}}}})
		if err != nil {
			t.Fatal(err)
		}
		kind, got, _, err := decodeLine(reply)
		if err != nil || kind != lineReply {
			t.Fatalf("reply not decoded: %v", err)
		}
		if got.ID != 42 || got.Rows[0][name] != value || got.Results[0].Error.Message != value {
			t.Fatalf("reply changed: %+v", got)
		}
	})
}

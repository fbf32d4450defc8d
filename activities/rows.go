package activities

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

// Readers for cmdlet rows as ConvertTo-Json (on-prem) or InvokeCommand
// (online) deliver them: strings, booleans, string lists, RFC 3339 dates.
// They are lenient about shape (a single value where a list is expected)
// because Exchange itself is.

func rowString(r exchange.Row, key string) string {
	v, ok := r[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func rowBool(r exchange.Row, key string) bool {
	switch v := r[key].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

func rowStrings(r exchange.Row, key string) []string {
	switch v := r[key].(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return nil
		}
		return []string{v}
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s := fmt.Sprint(e); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{fmt.Sprint(r[key])}
}

func rowTime(r exchange.Row, key string) time.Time {
	s := rowString(r, key)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func rowBytes(r exchange.Row, key string) []byte {
	b, err := base64.StdEncoding.DecodeString(rowString(r, key))
	if err != nil {
		return nil
	}
	return b
}

// batchRows returns one command's rows from a batch, or its error wrapped
// with the cmdlet name.
func batchRows(res []exchange.Result, i int, cmds []exchange.Command) ([]exchange.Row, error) {
	if i >= len(res) {
		return nil, fmt.Errorf("%s: no result in batch", cmds[i].Cmdlet)
	}
	if res[i].Error != nil {
		return nil, res[i].Error
	}
	return res[i].Rows, nil
}

func cmd(name string, kv ...any) exchange.Command {
	c := exchange.Command{Cmdlet: name}
	if len(kv) > 0 {
		c.Parameters = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			c.Parameters[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ResolveSecret returns the secret a credential reference points at:
// env:NAME reads the variable NAME through getenv (nil means os.Getenv),
// file:PATH reads the file. Trailing line breaks are removed because
// "echo secret > file" and most secret mounts add one; use
// ResolveSecretBytes for binary material such as a PKCS#12 certificate.
//
// Errors name the reference, never the value, and a value that is not a
// reference is not echoed either: it is most likely a pasted secret. Never
// log the result or put it into workflow input.
func ResolveSecret(ref string, getenv func(string) string) (string, error) {
	b, err := ResolveSecretBytes(ref, getenv)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("resolve secret %s: only line breaks", ref)
	}
	return s, nil
}

// ResolveSecretBytes is ResolveSecret without trimming, for binary secrets.
func ResolveSecretBytes(ref string, getenv func(string) string) ([]byte, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if m := refMsg(ref); m != "" {
		return nil, errors.New("resolve secret: value " + m)
	}
	switch {
	case strings.HasPrefix(ref, "env:"):
		v := getenv(strings.TrimPrefix(ref, "env:"))
		if v == "" {
			return nil, fmt.Errorf("resolve secret %s: environment variable is not set or empty", ref)
		}
		return []byte(v), nil
	default: // file:, guaranteed by refMsg
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// *PathError carries the path and the OS reason, nothing read.
			return nil, fmt.Errorf("resolve secret %s: %w", ref, err)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("resolve secret %s: file is empty", ref)
		}
		return b, nil
	}
}

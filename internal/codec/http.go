package codec

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// MaxRequestBytes bounds one codec-server request: Temporal limits a
// payload to 2 MB, and the Web UI sends a few at a time.
const MaxRequestBytes = 16 << 20

// HTTPOptions configure the codec server handler.
type HTTPOptions struct {
	// AllowedOrigins are the Web UI origins (scheme://host:port) whose
	// browser pages may call the codec server, e.g. http://localhost:8233
	// for the dev server's UI. Requests without an Origin header (the CLI,
	// curl) are always served; a browser request from any other origin is
	// refused before anything is decrypted.
	AllowedOrigins []string
	// BearerToken, when set, is required of every request that reaches the
	// codec: "Authorization: Bearer <token>", compared in constant time.
	// A CORS preflight (OPTIONS), which a browser sends without
	// credentials, is answered without it and decrypts nothing.
	BearerToken string
}

// HTTPHandler serves POST .../encode and .../decode (the remote codec
// protocol of the Temporal Web UI and `temporal --codec-endpoint`) with
// CORS for the allowed UI origins. Anyone who can reach it can decrypt:
// bind it to loopback, or put it behind authentication. It decodes
// unsealed payloads as they are whatever the codec requires: the Web UI
// sends every payload it shows, and showing one acts on nothing.
func HTTPHandler(c *Codec, o HTTPOptions) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c.Lenient())
	origins := make([]string, len(o.AllowedOrigins))
	for i, s := range o.AllowedOrigins {
		origins[i] = strings.TrimRight(s, "/")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Add("Vary", "Origin")
			if !slices.Contains(origins, origin) {
				http.Error(w, "origin not allowed: start the codec server with --ui-origin "+origin, http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			// Authorization and Authorization-Extras: the Web UI forwards
			// the operator's access token and ID token in them when its
			// codec settings pass the access token.
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization, Authorization-Extras")
			h.Set("Access-Control-Max-Age", "600")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if o.BearerToken != "" && !bearerOK(r.Header.Get("Authorization"), o.BearerToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hybridflow codec server"`)
			http.Error(w, "a bearer token is required (Authorization: Bearer <token>)", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		inner.ServeHTTP(w, r)
	})
}

// bearerOK reports whether an Authorization header carries token.
func bearerOK(header, token string) bool {
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

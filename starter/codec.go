package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hybridflow/hybridflow/internal/codec"
	"github.com/hybridflow/hybridflow/internal/config"
)

func init() {
	extraCommands = append(extraCommands, (*app).codecServerCommand)
}

// defaultUIOrigins are the Web UIs of `make run` (the dev server's, port
// 8233) and of docker-compose.yml (port 8080).
var defaultUIOrigins = []string{"http://localhost:8233", "http://127.0.0.1:8233", "http://localhost:8080", "http://127.0.0.1:8080"}

func (a *app) codecServerCommand() *cobra.Command {
	var (
		listen                  string
		origins                 []string
		allowRemote             bool
		authToken               string
		tlsCert, tlsKey, tlsCCA string
	)
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the payload codec to the Temporal Web UI so it shows encrypted payloads in clear",
		Long: `codec-server decrypts (and encrypts) payloads for the Temporal Web UI and the
temporal CLI over HTTP, with the keys of temporal.codec in the config (or
HYBRIDFLOW_CODEC_KEYS). Point the UI at it:

  temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081
  docker compose: TEMPORAL_CODEC_ENDPOINT=http://127.0.0.1:8081 on temporal-ui
  or in the Web UI: Settings (the data-encoder icon) > Codec Server endpoint

The browser calls the codec server directly, so it runs where the operator's
browser can reach it, usually on the operator's own machine. Whoever can reach
it can decrypt, so it listens on loopback; to listen on any other address it
must authenticate its callers, with a bearer token (--auth-token env:NAME or
file:PATH; the temporal CLI sends it with --codec-auth "Bearer <token>"),
with client certificates (--tls-client-ca, with --tls-cert and --tls-key; the
browser presents one from the operator's certificate store), or both.`,
		Example: "  hybridflow codec-server --config configs/worker.yaml\n" +
			"  hybridflow codec-server --listen 127.0.0.1:8081 --ui-origin https://temporal.example.com\n" +
			"  hybridflow codec-server --listen 0.0.0.0:8081 --tls-cert codec.pem --tls-key codec.key --tls-client-ca operators-ca.pem",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The listen address and its protection are checked before
			// any key is read.
			sec, err := codecServerSecurity(listen, authToken, tlsCert, tlsKey, tlsCCA, a.getenv)
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if cfg.Temporal.Codec == nil {
				return fmt.Errorf("no payload codec configured: add temporal.codec to the config or set %s (see README, Running in production)", config.EnvCodecKeys)
			}
			c, err := codec.FromConfig(cfg.Temporal.Codec, a.getenv)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("codec server: %w", err)
			}
			scheme := "http"
			if sec.tls != nil {
				ln, scheme = tls.NewListener(ln, sec.tls), "https"
			}
			srv := &http.Server{
				Handler:           codec.HTTPHandler(c, codec.HTTPOptions{AllowedOrigins: origins, BearerToken: sec.token}),
				ReadHeaderTimeout: 5 * time.Second,
				TLSConfig:         sec.tls,
			}
			a.printf("codec server listening on %s://%s (keys: %s; encrypting with %s; UI origins: %s; callers: %s)\n",
				scheme, ln.Addr(), strings.Join(c.KeyIDs(), ", "), c.ActiveKeyID(), strings.Join(origins, ", "), sec.describe())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return err
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8081", "host:port to listen on (beyond loopback only with --auth-token or --tls-client-ca)")
	f.StringArrayVar(&origins, "ui-origin", defaultUIOrigins, "Web UI origin allowed to call the codec server (repeatable; replaces the defaults)")
	f.StringVar(&authToken, "auth-token", "", "require \"Authorization: Bearer <token>\" of every caller; the token is a reference, env:NAME or file:PATH, to at least 32 characters")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	f.StringVar(&tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&tlsCCA, "tls-client-ca", "", "require a client certificate issued by a CA in this PEM file (mutual TLS); needs --tls-cert and --tls-key")
	f.BoolVar(&allowRemote, "allow-remote", false, "no longer enough on its own: listening beyond loopback needs --auth-token or --tls-client-ca")
	_ = f.MarkDeprecated("allow-remote", "listening beyond loopback needs --auth-token or --tls-client-ca instead")
	return cmd
}

// minCodecTokenChars is the shortest bearer token the codec server takes:
// the token is all that stands between a caller and every payload.
const minCodecTokenChars = 32

// codecSecurity is how the codec server authenticates its callers.
type codecSecurity struct {
	token      string      // required bearer token; "" for none
	tls        *tls.Config // nil for plain HTTP
	clientCert bool        // tls requires a client certificate
}

func (s codecSecurity) describe() string {
	var parts []string
	if s.clientCert {
		parts = append(parts, "client certificate")
	}
	if s.token != "" {
		parts = append(parts, "bearer token")
	}
	if len(parts) == 0 {
		return "loopback only, no authentication"
	}
	return strings.Join(parts, " and ")
}

// codecServerSecurity checks the codec server's flags and loads what they
// name. A non-loopback listen address is refused unless callers must
// authenticate: with a bearer token, client certificates, or both.
func codecServerSecurity(listen, tokenRef, certFile, keyFile, clientCAFile string, getenv func(string) string) (codecSecurity, error) {
	var sec codecSecurity
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return sec, fmt.Errorf("--listen %q: %w", listen, err)
	}
	switch {
	case (certFile == "") != (keyFile == ""):
		if certFile == "" {
			return sec, fmt.Errorf("--tls-key is given without --tls-cert")
		}
		return sec, fmt.Errorf("--tls-cert is given without --tls-key")
	case clientCAFile != "" && certFile == "":
		return sec, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for in the TLS handshake")
	}
	if tokenRef != "" {
		if !strings.HasPrefix(tokenRef, "env:") && !strings.HasPrefix(tokenRef, "file:") {
			return sec, fmt.Errorf("--auth-token must be a reference, env:NAME or file:PATH, to the token (a literal token would show in the process list and shell history; value not shown)")
		}
		tok, err := config.ResolveSecret(tokenRef, getenv)
		if err != nil {
			return sec, fmt.Errorf("--auth-token %s: %w", tokenRef, err)
		}
		tok = strings.TrimSpace(tok)
		if len(tok) < minCodecTokenChars {
			return sec, fmt.Errorf("--auth-token %s: the token is %d characters, fewer than %d; make one with `openssl rand -base64 32`", tokenRef, len(tok), minCodecTokenChars)
		}
		sec.token = tok
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return sec, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
		}
		sec.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if clientCAFile != "" {
			pemData, err := os.ReadFile(clientCAFile)
			if err != nil {
				return sec, fmt.Errorf("--tls-client-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemData) {
				return sec, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", clientCAFile)
			}
			sec.tls.ClientCAs, sec.tls.ClientAuth, sec.clientCert = pool, tls.RequireAndVerifyClientCert, true
		}
	}
	if isLoopbackHost(host) || sec.token != "" || sec.clientCert {
		return sec, nil
	}
	return sec, fmt.Errorf("--listen %s is not a loopback address: anyone who reaches the codec server could decrypt every payload; "+
		"require a bearer token with --auth-token env:NAME|file:PATH, or client certificates with --tls-client-ca FILE (with --tls-cert and --tls-key)", listen)
}

// isLoopbackHost reports whether a listen host is loopback only; "" and
// unspecified addresses (0.0.0.0, ::) listen on every interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

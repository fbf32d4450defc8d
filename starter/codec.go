package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	var listen string
	var origins []string
	var allowRemote bool
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
it can decrypt: it listens on loopback unless --allow-remote is given, and then
belongs behind an authenticating proxy.`,
		Example: "  hybridflow codec-server --config configs/worker.yaml\n  hybridflow codec-server --listen 127.0.0.1:8081 --ui-origin https://temporal.example.com",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			if err := checkLoopback(listen, allowRemote); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("codec server: %w", err)
			}
			srv := &http.Server{
				Handler:           codec.HTTPHandler(c, codec.HTTPOptions{AllowedOrigins: origins}),
				ReadHeaderTimeout: 5 * time.Second,
			}
			a.printf("codec server listening on http://%s (keys: %s; encrypting with %s; UI origins: %s)\n",
				ln.Addr(), strings.Join(c.KeyIDs(), ", "), c.ActiveKeyID(), strings.Join(origins, ", "))
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
	f.StringVar(&listen, "listen", "127.0.0.1:8081", "host:port to listen on")
	f.StringArrayVar(&origins, "ui-origin", defaultUIOrigins, "Web UI origin allowed to call the codec server (repeatable; replaces the defaults)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow listening on a non-loopback address (put authentication in front of it)")
	return cmd
}

// checkLoopback refuses a non-loopback listen address unless allowed:
// the codec server decrypts for anyone who can reach it.
func checkLoopback(listen string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %s is not a loopback address: anyone who reaches the codec server can decrypt every payload; pass --allow-remote if it sits behind authentication", listen)
}

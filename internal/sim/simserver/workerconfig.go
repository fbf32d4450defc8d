package simserver

import (
	"net/url"

	"github.com/hybridflow/hybridflow/internal/config"
)

// The pieces of a worker configuration that point the worker an operator
// deploys at this simulator, as YAML-ready values, so that every test rig
// writes them the same way.

// StandInCommand is the shipped shell command line (-File {script}) with
// the PowerShell stand-in at standIn in place of powershell.exe.
func StandInCommand(standIn string) []string {
	return []string{standIn, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", config.ScriptPlaceholder}
}

// Endpoints is the worker config's endpoints block at this simulator, its
// CA trusted through ca_file.
func (s *Server) Endpoints() map[string]any {
	return map[string]any{
		"authority_host":  s.BaseURL() + "/",
		"graph":           s.BaseURL() + "/v1.0",
		"exchange_online": s.BaseURL(),
		"ca_file":         s.CAFile(),
	}
}

// ExchangeURL is the remote PowerShell endpoint of site's on-premises
// Exchange: a remote session's connection_uri.
func (s *Server) ExchangeURL(site string) string {
	return s.GatewayURL() + "/" + ExchangeEndpoint + "/" + url.PathEscape(site)
}

// LyncURL is the gateway endpoint of site's Lync deployment, for a local
// session's HYBRIDFLOW_SIM_PSHOST.
func (s *Server) LyncURL(site string) string {
	return s.GatewayURL() + "/" + LyncEndpoint + "/" + url.PathEscape(site)
}

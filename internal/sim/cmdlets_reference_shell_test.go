package sim_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/sim"
)

// Through the PowerShell-host protocol (real client, relay process,
// server) a call Microsoft's reference does not document fails with the
// binder's exception and text, as from a real host. Rows (copy of
// shared/reference/exchange-cmdlets.tsv in internal/exchange/cmdletref):
// Get-AuthServer / (All) has Identity and DomainController only;
// Set-CsHostingProvider / Identity and / Instance have no ProxyFqdn.
func TestShellHostRefusesUndocumentedParameters(t *testing.T) {
	s := psServe(t, sim.NewShellTestWorld())
	for _, c := range []struct {
		side sim.Side
		cmd  exchange.Command
		msg  string
	}{
		{sim.OnPrem, psCommand("Get-AuthServer", "Confirm", false), "A parameter cannot be found that matches parameter name 'Confirm'."},
		{sim.Lync, psCommand("Set-CsHostingProvider", "Identity", "Exchange Online", "ProxyFqdn", "exap.um.outlook.com"), "A parameter cannot be found that matches parameter name 'ProxyFqdn'."},
	} {
		sh := s.shell(t, c.side, sim.ShellTestTenant)
		_, err := sh.Run(context.Background(), c.cmd)
		var e *exchange.Error
		if !errors.As(err, &e) || e.Type != exchange.TypeParameterBinding || e.Message != c.msg {
			t.Errorf("%s %s: %v, want ParameterBindingException %q", c.side, c.cmd.Cmdlet, err, c.msg)
		}
	}
}

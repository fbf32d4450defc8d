package sim

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/cmdletref"
)

// Side says which organisation a cmdlet runs against.
type Side string

const (
	OnPrem Side = "onprem" // on-prem Exchange, through the PowerShell host
	Online Side = "online" // Exchange Online, through InvokeCommand
	Lync   Side = "lync"   // Lync / Skype for Business, through the PowerShell host
)

// Call is what a cmdlet implementation sees: the world (locked), the
// tenant, the organisation for its side, and the parameters as data.
type Call struct {
	World  *World
	Tenant *Tenant
	Side   Side
	Org    *ExchangeOrg // nil for Lync
	Params Params
	// Warnings collects what the cmdlet wrote to the warning stream
	// (InvokeWithWarnings; EXO returns them as @adminapi.warnings).
	Warnings []string
}

// Params are a cmdlet's parameters as decoded from JSON.
type Params map[string]any

type cmdletFunc func(c *Call) ([]exchange.Row, *exchange.Error)

var registry = map[Side]map[string]cmdletFunc{}

// register adds a cmdlet implementation; each cmdlets_*.go file calls it
// from init so the engine's surface is exactly the files present.
func register(side Side, name string, f cmdletFunc) {
	if registry[side] == nil {
		registry[side] = map[string]cmdletFunc{}
	}
	registry[side][strings.ToLower(name)] = f
}

// Cmdlets lists the cmdlets a side implements, sorted.
func Cmdlets(side Side) []string {
	var out []string
	for n := range registry[side] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Invoke runs one cmdlet against a tenant's organisation on a side. It is
// the single entry point of both the PowerShell-host and the InvokeCommand
// servers, so both protocols share one set of semantics.
func (w *World) Invoke(side Side, tenantID string, cmd exchange.Command) ([]exchange.Row, *exchange.Error) {
	rows, _, err := w.InvokeWithWarnings(side, tenantID, cmd)
	return rows, err
}

// InvokeWithWarnings is Invoke that also returns the cmdlet's warnings.
func (w *World) InvokeWithWarnings(side Side, tenantID string, cmd exchange.Command) ([]exchange.Row, []string, *exchange.Error) {
	if !exchange.Allowed(cmd.Cmdlet) {
		return nil, nil, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: exchange.TypeCmdletNotAllowed, Message: fmt.Sprintf("The term '%s' is not allowed by the host.", cmd.Cmdlet), Category: "PermissionDenied"}
	}
	f := registry[side][strings.ToLower(cmd.Cmdlet)]
	if f == nil {
		return nil, nil, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: "System.Management.Automation.CommandNotFoundException", Message: fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet.", cmd.Cmdlet), Category: "ObjectNotFound"}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tenant(tenantID)
	if t == nil {
		return nil, nil, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: exchange.TypeAccessDenied, Message: fmt.Sprintf("no organisation for tenant %s", tenantID), Category: "PermissionDenied"}
	}
	// PowerShell binds parameters before the cmdlet runs: what Microsoft's
	// reference says the cmdlet does not take on this side, or a mix of
	// parameter sets, or a missing mandatory parameter, fails here with the
	// binder's error, whatever the cmdlet's implementation would accept.
	if err := bindAsDocumented(side, cmd); err != nil {
		return nil, nil, err
	}
	c := &Call{World: w, Tenant: t, Side: side, Params: Params(cmd.Parameters)}
	switch side {
	case OnPrem:
		c.Org = &t.OnPrem
	case Online:
		c.Org = &t.Online
	}
	rows, err := f(c)
	if err != nil && err.Cmdlet == "" {
		err.Cmdlet = cmd.Cmdlet
	}
	return rows, c.Warnings, err
}

// bindAsDocumented checks cmd against the cmdlet reference table
// (package cmdletref) for the side's product: on-prem Exchange Server,
// Exchange Online, or Lync Server / Skype for Business Server.
func bindAsDocumented(side Side, cmd exchange.Command) *exchange.Error {
	ref := cmdletref.OnPrem
	switch side {
	case Online:
		ref = cmdletref.Online
	case Lync:
		ref = cmdletref.Lync
	}
	_, err := cmdletref.Bind(ref, cmd)
	if err == nil {
		return nil
	}
	if e, ok := err.(*exchange.Error); ok {
		return e
	}
	return &exchange.Error{Cmdlet: cmd.Cmdlet, Type: exchange.TypeParameterBinding, Message: err.Error(), Category: "InvalidArgument"}
}

// String returns a string parameter ("" when absent).
func (p Params) String(name string) string {
	v, ok := p.get(name)
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Has reports whether a parameter was passed.
func (p Params) Has(name string) bool { _, ok := p.get(name); return ok }

// Bool returns a boolean or switch parameter.
func (p Params) Bool(name string) bool {
	v, ok := p.get(name)
	if !ok {
		return false
	}
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true") || b == "1"
	}
	return false
}

// Strings returns a multi-valued parameter; a single string counts as one.
func (p Params) Strings(name string) []string {
	v, ok := p.get(name)
	if !ok || v == nil {
		return nil
	}
	switch x := v.(type) {
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// get looks a parameter up case-insensitively, as PowerShell binds them.
func (p Params) get(name string) (any, bool) {
	if v, ok := p[name]; ok {
		return v, true
	}
	for k, v := range p {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// notFound is the error every Get-/Set-/Remove- raises for a missing identity.
func notFound(kind, identity string) *exchange.Error {
	return &exchange.Error{Type: exchange.TypeNotFound, Message: fmt.Sprintf("The operation couldn't be performed because object '%s' couldn't be found on '%s'.", identity, kind), Category: "NotSpecified"}
}

// alreadyExists is the error New-/Add- cmdlets raise for a duplicate name.
func alreadyExists(kind, name string) *exchange.Error {
	return &exchange.Error{Type: exchange.TypeAlreadyExists, Message: fmt.Sprintf("The %s '%s' already exists.", kind, name), Category: "ResourceExists"}
}

// invalid is a parameter-binding or validation failure.
func invalid(format string, args ...any) *exchange.Error {
	return &exchange.Error{Type: exchange.TypeParameterBinding, Message: fmt.Sprintf(format, args...), Category: "InvalidArgument"}
}

// touch records a configuration write: counters, and the propagation delay
// that makes verification fail for a while after a change.
func (c *Call) touch() {
	c.Tenant.Behaviour.PendingPropagation = c.Tenant.Behaviour.PropagationChecks
	c.World.countWrite(c.Tenant.ID)
}

// --- warnings (added with the Exchange Online endpoint, exo.go) ---

// Warn writes to the cmdlet's warning stream, as WriteWarning does: the
// call still succeeds, and callers see the text next to the rows.
func (c *Call) Warn(format string, args ...any) {
	c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...))
}

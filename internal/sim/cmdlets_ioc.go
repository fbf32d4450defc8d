package sim

// IntraOrganizationConnector cmdlets, one implementation for both sides:
// on-prem Exchange (step 6, through the PowerShell host) and Exchange
// Online (step 7, through InvokeCommand) document the same four cmdlets
// with the same parameters, and Exchange stores and refuses connectors the
// same way on both. Parameter names and sets are bound against each side's
// reference table before these run (bindAsDocumented); iocBind below is
// the stricter per-cmdlet list both sides share.

import (
	"fmt"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

func init() {
	for _, side := range []Side{OnPrem, Online} {
		register(side, "Get-IntraOrganizationConnector", iocGet)
		register(side, "New-IntraOrganizationConnector", iocNew)
		register(side, "Set-IntraOrganizationConnector", iocSet)
		register(side, "Remove-IntraOrganizationConnector", iocRemove)
	}
}

const iocKind = "IntraOrganizationConnector"

func iocRow(ioc *IntraOrgConnector) exchange.Row {
	return exchange.Row{
		"Identity":             ioc.Name,
		"Name":                 ioc.Name,
		"DiscoveryEndpoint":    ioc.DiscoveryEndpoint,
		"TargetAddressDomains": onpremStrings(ioc.TargetAddressDomains),
		"Enabled":              ioc.Enabled,
	}
}

func iocFind(org *ExchangeOrg, identity string) (int, *IntraOrgConnector) {
	for i, ioc := range org.IntraOrganizationConnectors {
		if strings.EqualFold(ioc.Name, identity) {
			return i, ioc
		}
	}
	return -1, nil
}

// iocDomains normalises -TargetAddressDomains as Exchange stores SmtpDomain
// values: trimmed, lower-case, unique; "a,b" counts as two.
func iocDomains(raw []string) ([]string, *exchange.Error) {
	var out []string
	for _, r := range raw {
		for _, d := range strings.Split(r, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "" {
				continue
			}
			if strings.ContainsAny(d, " @/\\") || !strings.Contains(d, ".") {
				return nil, invalid("Cannot bind parameter 'TargetAddressDomains': \"%s\" is not a valid SMTP domain.", d)
			}
			if !containsFold(out, d) {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		return nil, invalid("Cannot bind argument to parameter 'TargetAddressDomains' because it is empty.")
	}
	return out, nil
}

// iocConflict: Exchange routes each domain through one connector.
func iocConflict(org *ExchangeOrg, self *IntraOrgConnector, domains []string) *exchange.Error {
	for _, other := range org.IntraOrganizationConnectors {
		if other == self {
			continue
		}
		for _, d := range domains {
			if containsFold(other.TargetAddressDomains, d) {
				return &exchange.Error{Type: exchange.TypeDuplicateIOCDomain,
					Message:  fmt.Sprintf("The domain '%s' is already used by IntraOrganizationConnector '%s'.", d, other.Name),
					Category: "InvalidOperation"}
			}
		}
	}
	return nil
}

func iocGet(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	if id := c.Params.String("Identity"); id != "" {
		_, ioc := iocFind(c.Org, id)
		if ioc == nil {
			return nil, notFound(iocKind, id)
		}
		return []exchange.Row{iocRow(ioc)}, nil
	}
	rows := make([]exchange.Row, 0, len(c.Org.IntraOrganizationConnectors))
	for _, ioc := range c.Org.IntraOrganizationConnectors {
		rows = append(rows, iocRow(ioc))
	}
	return rows, nil
}

func iocNew(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Name", "DiscoveryEndpoint", "TargetAddressDomains", "Enabled"); err != nil {
		return nil, err
	}
	name, err := onpremRequire(c.Params, "Name")
	if err != nil {
		return nil, err
	}
	endpoint, err := onpremAbsURL("DiscoveryEndpoint", c.Params.String("DiscoveryEndpoint"))
	if err != nil {
		return nil, err
	}
	domains, err := iocDomains(c.Params.Strings("TargetAddressDomains"))
	if err != nil {
		return nil, err
	}
	if _, existing := iocFind(c.Org, name); existing != nil {
		return nil, alreadyExists(iocKind, name)
	}
	if err := iocConflict(c.Org, nil, domains); err != nil {
		return nil, err
	}
	enabled := true
	if c.Params.Has("Enabled") {
		enabled = c.Params.Bool("Enabled")
	}
	ioc := &IntraOrgConnector{Name: name, DiscoveryEndpoint: endpoint, TargetAddressDomains: domains, Enabled: enabled, CreatedBy: "client"}
	c.Org.IntraOrganizationConnectors = append(c.Org.IntraOrganizationConnectors, ioc)
	c.touch()
	return []exchange.Row{iocRow(ioc)}, nil
}

func iocSet(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity", "DiscoveryEndpoint", "TargetAddressDomains", "Enabled"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	_, ioc := iocFind(c.Org, id)
	if ioc == nil {
		return nil, notFound(iocKind, id)
	}
	next := *ioc
	if c.Params.Has("DiscoveryEndpoint") {
		if next.DiscoveryEndpoint, err = onpremAbsURL("DiscoveryEndpoint", c.Params.String("DiscoveryEndpoint")); err != nil {
			return nil, err
		}
	}
	if c.Params.Has("TargetAddressDomains") {
		if next.TargetAddressDomains, err = iocDomains(c.Params.Strings("TargetAddressDomains")); err != nil {
			return nil, err
		}
		if err := iocConflict(c.Org, ioc, next.TargetAddressDomains); err != nil {
			return nil, err
		}
	}
	if c.Params.Has("Enabled") {
		next.Enabled = c.Params.Bool("Enabled")
	}
	if next.DiscoveryEndpoint == ioc.DiscoveryEndpoint && next.Enabled == ioc.Enabled && onpremSameSet(next.TargetAddressDomains, ioc.TargetAddressDomains) {
		return onpremNoChange(c, ioc.Name)
	}
	*ioc = next
	c.touch()
	return nil, nil
}

func iocRemove(c *Call) ([]exchange.Row, *exchange.Error) {
	if err := onpremBind(c.Params, "Identity"); err != nil {
		return nil, err
	}
	id, err := onpremRequire(c.Params, "Identity")
	if err != nil {
		return nil, err
	}
	i, ioc := iocFind(c.Org, id)
	if ioc == nil {
		return nil, notFound(iocKind, id)
	}
	c.Org.IntraOrganizationConnectors = append(c.Org.IntraOrganizationConnectors[:i:i], c.Org.IntraOrganizationConnectors[i+1:]...)
	c.touch()
	return nil, nil
}

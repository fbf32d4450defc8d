package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// OnPremHosts hands out the PowerShell host of a tenant's on-prem Exchange.
type OnPremHosts interface {
	OnPrem(t Target) exchange.Runner
}

// OnPrem runs the on-prem Exchange steps (1, 2, 3, 6, 8, the dedicated-app
// auth-server and setting-override steps, verification to the cloud) on
// the hybridflow-onprem-<site> task queue, next to Exchange.
type OnPrem struct {
	Hosts OnPremHosts
}

// onPremDiscovery is the one batched round trip that reads everything the
// plan needs from on-prem Exchange (issue: one discovery call per system).
var onPremDiscovery = []exchange.Command{
	cmd("Get-OrganizationConfig"),
	cmd("Get-ExchangeServer"),
	cmd("Get-AcceptedDomain"),
	cmd("Get-WebServicesVirtualDirectory"),
	cmd("Get-MapiVirtualDirectory"),
	cmd("Get-OABVirtualDirectory"),
	cmd("Get-AutodiscoverVirtualDirectory"),
	cmd("Get-AuthServer"),
	cmd("Get-PartnerApplication"),
	cmd("Get-AuthConfig"),
	cmd("Get-ExchangeCertificate"),
	cmd("Get-IntraOrganizationConnector"),
	cmd("Get-AvailabilityAddressSpace"),
	cmd("Get-SettingOverride"),
	cmd("Get-Mailbox", "ResultSize", 1),
}

var vdirKinds = map[string]string{
	"Get-WebServicesVirtualDirectory":  plan.VDirWebServices,
	"Get-MapiVirtualDirectory":         plan.VDirMapi,
	"Get-OABVirtualDirectory":          plan.VDirOAB,
	"Get-AutodiscoverVirtualDirectory": plan.VDirAutodiscover,
}

// DiscoverOnPrem reads the on-prem organisation and returns
// it as the on-prem half of plan.Observed. Step 3 (export the auth
// certificate) happens here too: only the public DER of the certificates
// Get-AuthConfig names is kept, so the payload stays small.
func (a *OnPrem) DiscoverOnPrem(ctx context.Context, t Target) (plan.Observed, error) {
	defer keepAlive(ctx, nil)()
	var o plan.Observed
	res, err := a.Hosts.OnPrem(t).RunBatch(ctx, onPremDiscovery)
	if err != nil {
		return o, classify("discover on-prem Exchange for "+t.TenantID, err)
	}
	for i, c := range onPremDiscovery {
		rows, err := batchRows(res, i, onPremDiscovery)
		if err != nil {
			// A missing mailbox list or vdir kind is survivable when
			// retrying cannot bring it; the rest is not.
			if (c.Cmdlet == "Get-Mailbox" || vdirKinds[c.Cmdlet] != "") && skippable(err) {
				continue
			}
			return o, classify("discover on-prem Exchange for "+t.TenantID, err)
		}
		switch c.Cmdlet {
		case "Get-OrganizationConfig":
			if len(rows) > 0 {
				o.OrganizationGUID = strings.ToLower(rowString(rows[0], "Guid"))
			}
		case "Get-ExchangeServer":
			for _, r := range rows {
				o.Servers = append(o.Servers, plan.ExchangeServer{Name: rowString(r, "Name"), Version: rowString(r, "AdminDisplayVersion"), Roles: rowString(r, "ServerRole")})
			}
		case "Get-AcceptedDomain":
			for _, r := range rows {
				o.AcceptedDomains = append(o.AcceptedDomains, plan.AcceptedDomain{DomainName: rowString(r, "DomainName"), Default: rowBool(r, "Default")})
			}
		case "Get-AuthServer":
			o.AuthServers = authServersFromRows(rows)
		case "Get-PartnerApplication":
			o.PartnerApp = partnerAppFromRows(rows)
		case "Get-AuthConfig":
			if len(rows) > 0 {
				r := rows[0]
				o.AuthConfig = plan.AuthConfig{CurrentThumbprint: rowString(r, "CurrentCertificateThumbprint"), NextThumbprint: rowString(r, "NextCertificateThumbprint"),
					NextEffective: rowTime(r, "NextCertificateEffectiveDate"), PreviousThumbprint: rowString(r, "PreviousCertificateThumbprint")}
			}
		case "Get-ExchangeCertificate":
			for _, r := range rows {
				o.Certificates = append(o.Certificates, plan.Certificate{Thumbprint: rowString(r, "Thumbprint"), Subject: rowString(r, "Subject"),
					NotBefore: rowTime(r, "NotBefore"), NotAfter: rowTime(r, "NotAfter"), DER: rowBytes(r, "RawData")})
			}
		case "Get-IntraOrganizationConnector":
			for _, r := range rows {
				o.OnPremIOCs = append(o.OnPremIOCs, iocFromRow(r))
			}
		case "Get-AvailabilityAddressSpace":
			for _, r := range rows {
				o.AvailabilitySpaces = append(o.AvailabilitySpaces, plan.AvailabilitySpace{ForestName: rowString(r, "ForestName"),
					AccessMethod: rowString(r, "AccessMethod"), ProxyURL: rowString(r, "ProxyUrl")})
			}
		case "Get-SettingOverride":
			o.SettingOverrides = overridesFromRows(rows)
		case "Get-Mailbox":
			for _, r := range rows {
				o.OnPremMailboxes = append(o.OnPremMailboxes, rowString(r, "PrimarySmtpAddress"))
			}
		default:
			for _, r := range rows {
				o.VirtualDirectories = append(o.VirtualDirectories, plan.VirtualDirectory{Kind: vdirKinds[c.Cmdlet], Server: rowString(r, "Server"),
					InternalURL: rowString(r, "InternalUrl"), ExternalURL: rowString(r, "ExternalUrl")})
			}
		}
	}
	o.Certificates = authCertificatesOnly(o.Certificates, o.AuthConfig)
	return o, nil
}

// authCertificatesOnly keeps the certificates Get-AuthConfig names: the
// machine store holds many (IIS, SMTP) that the plan has no use for.
func authCertificatesOnly(cs []plan.Certificate, ac plan.AuthConfig) []plan.Certificate {
	var out []plan.Certificate
	for _, c := range cs {
		for _, tp := range []string{ac.CurrentThumbprint, ac.NextThumbprint, ac.PreviousThumbprint} {
			if tp != "" && strings.EqualFold(c.Thumbprint, tp) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func authServersFromRows(rows []exchange.Row) []plan.AuthServer {
	out := make([]plan.AuthServer, 0, len(rows))
	for _, r := range rows {
		out = append(out, plan.AuthServer{Name: rowString(r, "Name"), Type: rowString(r, "Type"),
			MetadataURL: rowString(r, "AuthMetadataUrl"), Realm: rowString(r, "Realm"), Enabled: rowBool(r, "Enabled"),
			ApplicationIdentifier: rowString(r, "ApplicationIdentifier"), DomainName: rowStrings(r, "DomainName")})
	}
	return out
}

// partnerAppFromRows finds the Exchange Online partner application
// (the first-party application ID with an empty realm), an enabled one
// before a disabled one.
func partnerAppFromRows(rows []exchange.Row) plan.PartnerApp {
	var pa plan.PartnerApp
	for _, r := range rows {
		if !strings.EqualFold(rowString(r, "ApplicationIdentifier"), cloud.FirstPartyAppID) || rowString(r, "Realm") != "" {
			continue
		}
		if !pa.Found || (!pa.Enabled && rowBool(r, "Enabled")) {
			pa = plan.PartnerApp{Found: true, Name: rowString(r, "Name"), Enabled: rowBool(r, "Enabled")}
		}
	}
	return pa
}

func overridesFromRows(rows []exchange.Row) []plan.SettingOverride {
	var out []plan.SettingOverride
	for _, r := range rows {
		out = append(out, plan.SettingOverride{Name: rowString(r, "Name"), Component: rowString(r, "ComponentName"),
			Section: rowString(r, "SectionName"), Parameters: rowStrings(r, "Parameters")})
	}
	return out
}

// EnsureAuthServers is step 1, decided for every server by
// plan.DecideAuthServer on a fresh read, as the plan decided it: the
// tenant's server of each type (recognised by realm, whatever its name or
// metadata URL) is left as it is, or enabled if it is disabled; a missing
// one is created. A server that has the wanted name but is not the
// tenant's blocks the step before anything is written. One read serves
// every server; a failure after a write keeps that write's undo record
// (progress).
//
// A server of the wanted name and metadata URL that the setup's discovery
// did not see (in.Before) was created by this run, by a New-AuthServer
// whose reply or result was lost (its host died after the cmdlet ran, or
// the worker died before the step's completion was recorded): it is
// reported as created, with the undo record the create would have had,
// which removes it only while it still has that metadata URL.
func (a *OnPrem) EnsureAuthServers(ctx context.Context, in AuthServersInput) (StepResult, error) {
	p := startProgress(ctx)
	defer p.keepAlive()()
	r := a.Hosts.OnPrem(in.Target)
	rows, err := r.Run(ctx, cmd("Get-AuthServer"))
	if err != nil {
		return StepResult{}, p.fail(classify("read auth servers", err))
	}
	list := authServersFromRows(rows)
	decs := make([]plan.AuthServerDecision, len(in.Servers))
	for i, spec := range in.Servers {
		decs[i] = plan.DecideAuthServer(authServerLabel(spec), list, spec)
		if decs[i].Change == plan.ChangeBlocked {
			return StepResult{}, p.fail(nonRetryable(ErrConflict, "%s", decs[i].Reason))
		}
	}
	for i, spec := range in.Servers {
		more := i < len(in.Servers)-1
		dec := decs[i]
		switch dec.Change {
		case plan.ChangeNone:
			if strings.EqualFold(dec.Server.Name, spec.Name) && sameURL(dec.Server.MetadataURL, spec.MetadataURL) && absent(in.Before, spec.Name) &&
				!p.holds(SystemOnPrem, UndoRemoveAuthServer, spec.Name) {
				p.add(StepResult{Outcome: Created, Detail: claimedHow(fmt.Sprintf("created auth server %s (%s)", spec.Name, spec.MetadataURL)),
					Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveAuthServer, Name: spec.Name, URL: spec.MetadataURL, Evidence: evidenceAbsentBefore}}}, more)
				continue
			}
			p.add(StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("%s present as %q", spec.Name, dec.Server.Name)}, more)
		case plan.ChangeUpdate:
			name := dec.Server.Name
			if _, err := r.Run(ctx, cmd("Set-AuthServer", "Identity", name, "Enabled", true)); err != nil {
				return StepResult{}, p.fail(classify("enable auth server "+name, err))
			}
			p.add(StepResult{Outcome: Updated, Detail: fmt.Sprintf("enabled auth server %q", name),
				Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoSetAuthServerEnabled, Name: name, Enabled: false}}}, more)
		default:
			params := []any{"Name", spec.Name, "AuthMetadataUrl", spec.MetadataURL}
			if spec.Type == plan.AuthServerTypeAzureAD {
				params = append(params, "Type", "AzureAD")
			}
			if _, err := r.Run(ctx, cmd("New-AuthServer", params...)); err != nil {
				if exchange.IsAlreadyExists(err) {
					// Created between our read and write, e.g. by the call of an
					// attempt whose worker died: the next attempt re-reads it.
					return StepResult{}, p.fail(retryable(ErrTransient, "create auth server %s: created concurrently; the next attempt re-reads it", spec.Name))
				}
				return StepResult{}, p.fail(classify("create auth server "+spec.Name, err))
			}
			p.add(StepResult{Outcome: Created, Detail: fmt.Sprintf("created auth server %s (%s)", spec.Name, spec.MetadataURL),
				Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveAuthServer, Name: spec.Name}}}, more)
		}
	}
	return p.done(), nil
}

func authServerLabel(spec plan.AuthServerSpec) string {
	if strings.EqualFold(spec.Type, plan.AuthServerTypeAzureAD) {
		return "evoSTS"
	}
	return "ACS"
}

// EnablePartnerApplication is step 2: the Exchange Online partner
// application (00000002-0000-0ff1-ce00-000000000000, empty realm) is
// enabled; a missing one is refused as the plan says (plan.DecidePartnerApp).
func (a *OnPrem) EnablePartnerApplication(ctx context.Context, t Target) (StepResult, error) {
	defer keepAlive(ctx, nil)()
	r := a.Hosts.OnPrem(t)
	rows, err := r.Run(ctx, cmd("Get-PartnerApplication"))
	if err != nil {
		return StepResult{}, classify("read partner applications", err)
	}
	pa := partnerAppFromRows(rows)
	change, reason := plan.DecidePartnerApp(pa)
	switch change {
	case plan.ChangeNone:
		return StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("partner application %q already enabled", pa.Name)}, nil
	case plan.ChangeUpdate:
		if _, err := r.Run(ctx, cmd("Set-PartnerApplication", "Identity", pa.Name, "Enabled", true)); err != nil {
			return StepResult{}, classify("enable partner application "+pa.Name, err)
		}
		return StepResult{Outcome: Updated, Detail: fmt.Sprintf("enabled partner application %q", pa.Name),
			Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoSetPartnerAppEnabled, Name: pa.Name, Enabled: false}}}, nil
	}
	return StepResult{}, nonRetryable(ErrInvalidInput, "%s", reason)
}

// Properties a restore-auth-server-app record may name in Fields.
const (
	fieldApplicationIdentifier = "ApplicationIdentifier"
	fieldDomainName            = "DomainName"
)

// SetAuthServerApplication is the dedicated application's on-prem half:
// Set-AuthServer -ApplicationIdentifier -DomainName on the evoSTS server
// only, chosen and changed as plan.DecideAuthServerApp says. DomainName
// gains the wanted values and keeps its own; the undo record says what
// changed, so an undo puts back the previous ApplicationIdentifier and
// removes exactly the domains added.
func (a *OnPrem) SetAuthServerApplication(ctx context.Context, in AuthServerAppInput) (StepResult, error) {
	if in.AppID == "" {
		return StepResult{}, nonRetryable(ErrInvalidInput, "the dedicated application's appId is unknown: the application step must run first")
	}
	defer keepAlive(ctx, nil)()
	r := a.Hosts.OnPrem(in.Target)
	rows, err := r.Run(ctx, cmd("Get-AuthServer"))
	if err != nil {
		return StepResult{}, classify("read auth servers", err)
	}
	dec := plan.DecideAuthServerApp(authServersFromRows(rows), in.EvoSTS, in.AppID, in.Domains)
	switch dec.Change {
	case plan.ChangeNone:
		return StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("auth server %q already uses application %s", dec.Server.Name, in.AppID)}, nil
	case plan.ChangeBlocked:
		typ := ErrConflict
		if dec.Missing {
			typ = ErrInvalidInput
		}
		return StepResult{}, nonRetryable(typ, "%s", dec.Reason)
	}
	name := dec.Server.Name
	if _, err := r.Run(ctx, cmd("Set-AuthServer", "Identity", name, "ApplicationIdentifier", in.AppID, "DomainName", dec.Domains)); err != nil {
		return StepResult{}, classify("set application identifier on auth server "+name, err)
	}
	undo := UndoRecord{System: SystemOnPrem, Kind: UndoRestoreAuthServerApp, Name: name,
		ApplicationIdentifier: dec.Server.ApplicationIdentifier, DomainName: dec.Server.DomainName, Added: dec.AddDomains}
	if dec.SetApp {
		undo.Fields = append(undo.Fields, fieldApplicationIdentifier)
	}
	if len(dec.AddDomains) > 0 {
		undo.Fields = append(undo.Fields, fieldDomainName)
	}
	return StepResult{Outcome: Updated, Detail: fmt.Sprintf("auth server %q now uses application %s for %s", name, in.AppID, strings.Join(dec.Domains, ", ")),
		Undo: []UndoRecord{undo}}, nil
}

// undoAuthServerApp reverses SetAuthServerApplication. A record with
// Fields restores only what it names, against the server as it is now;
// an older record puts back both properties as they were.
func undoAuthServerApp(ctx context.Context, r exchange.Runner, rec UndoRecord) error {
	if len(rec.Fields) == 0 {
		_, err := r.Run(ctx, cmd("Set-AuthServer", "Identity", rec.Name, "ApplicationIdentifier", rec.ApplicationIdentifier, "DomainName", nonNil(rec.DomainName)))
		return err
	}
	rows, err := r.Run(ctx, cmd("Get-AuthServer", "Identity", rec.Name))
	if err != nil || len(rows) == 0 {
		return err
	}
	cur := authServersFromRows(rows)[0]
	app := cur.ApplicationIdentifier
	if slices.Contains(rec.Fields, fieldApplicationIdentifier) {
		app = rec.ApplicationIdentifier
	}
	domains := cur.DomainName
	if slices.Contains(rec.Fields, fieldDomainName) {
		domains = withoutFold(cur.DomainName, rec.Added)
	}
	if strings.EqualFold(app, cur.ApplicationIdentifier) && sameFold(domains, cur.DomainName) {
		return nil
	}
	// Both properties go together: -ApplicationIdentifier puts the call in
	// the one parameter set that also has -DomainName.
	_, err = r.Run(ctx, cmd("Set-AuthServer", "Identity", rec.Name, "ApplicationIdentifier", app, "DomainName", nonNil(domains)))
	return err
}

// EnsureSettingOverride creates the EnableExchangeHybrid3PAppFeature
// override as plan.OverrideState and plan.OverridePreconditions decide:
// an override of the section that enables the feature (any name) means
// nothing is created; one that does not is a conflict; otherwise the
// override is created only once consent, the partner application and an
// enabled IntraOrganizationConnector are in place, checked in that order.
// It then refreshes VariantConfiguration so that Exchange loads the
// override now. The refresh runs on every attempt, so a retry after a
// failed refresh still loads an override an earlier attempt created, and
// that attempt's undo record survives the failure (progress). The
// override found enabling the feature under hybridflow's name, which the
// setup's discovery did not see (in.Before), was created by this run, by a
// call whose reply or result was lost, and gets the create's undo record.
func (a *OnPrem) EnsureSettingOverride(ctx context.Context, in SettingOverrideInput) (StepResult, error) {
	p := startProgress(ctx)
	defer p.keepAlive()()
	r := a.Hosts.OnPrem(in.Target)
	claim := in.Before
	if p.holds(SystemOnPrem, UndoRemoveSettingOverride, plan.OverrideName) {
		claim = nil // an earlier attempt recorded it
	}
	res, err := ensureSettingOverride(ctx, r, in.ConsentGranted, in.ConnectorsFirst, claim)
	if err != nil {
		return StepResult{}, p.fail(err)
	}
	p.add(res, true)
	if err := refreshVariantConfig(ctx, r); err != nil {
		return StepResult{}, p.fail(classify("refresh VariantConfiguration", err))
	}
	p.add(StepResult{Outcome: Unchanged, Detail: "refreshed VariantConfiguration"}, false)
	return p.done(), nil
}

// overrideReads are what the override step reads, in one round trip.
var overrideReads = []exchange.Command{cmd("Get-SettingOverride"), cmd("Get-PartnerApplication"), cmd("Get-IntraOrganizationConnector")}

func ensureSettingOverride(ctx context.Context, r exchange.Runner, consent *bool, connectorsFirst bool, before *Before) (StepResult, error) {
	res, err := r.RunBatch(ctx, overrideReads)
	if err != nil {
		return StepResult{}, classify("read setting overrides and OAuth configuration", err)
	}
	var rows [3][]exchange.Row
	for i := range overrideReads {
		if rows[i], err = batchRows(res, i, overrideReads); err != nil {
			return StepResult{}, classify("read "+overrideReads[i].Cmdlet, err)
		}
	}
	enabling, other := plan.OverrideState(overridesFromRows(rows[0]))
	if c := plan.OverrideConflict(other); c != "" {
		return StepResult{}, nonRetryable(ErrConflict, "%s", c)
	}
	if len(enabling) > 0 {
		if slices.ContainsFunc(enabling, func(so plan.SettingOverride) bool { return strings.EqualFold(so.Name, plan.OverrideName) }) && absent(before, plan.OverrideName) {
			return StepResult{Outcome: Created, Detail: claimedHow("created setting override " + plan.OverrideName),
				Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveSettingOverride, Name: plan.OverrideName, Evidence: evidenceAbsentBefore}}}, nil
		}
		return StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("setting override %q for %s exists", enabling[0].Name, plan.OverrideSection)}, nil
	}
	pa := partnerAppFromRows(rows[1])
	pre := plan.OverridePreconditions{Consent: consent == nil || *consent, PartnerApp: pa.Found && pa.Enabled, Connector: !connectorsFirst}
	for _, row := range rows[2] {
		if iocFromRow(row).Enabled {
			pre.Connector = true
		}
	}
	if unmet := pre.Unmet(); unmet != "" {
		return StepResult{}, nonRetryable(ErrInvalidInput, "%s", plan.OverridePreconditionsUnmet(unmet))
	}
	if _, err := r.Run(ctx, cmd("New-SettingOverride", "Name", plan.OverrideName, "Component", plan.OverrideComponent,
		"Section", plan.OverrideSection, "Parameters", []string{plan.OverrideParameter}, "Reason", "Exchange hybrid dedicated application (hybridflow)")); err != nil {
		if exchange.IsAlreadyExists(err) {
			// Created between our read and write: the next attempt reads
			// it, and claims it only when discovery did not see it.
			return StepResult{}, retryable(ErrTransient, "create setting override %s: created concurrently; the next attempt re-reads it", plan.OverrideName)
		}
		return StepResult{}, classify("create setting override "+plan.OverrideName, err)
	}
	return StepResult{Outcome: Created, Detail: "created setting override " + plan.OverrideName,
		Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveSettingOverride, Name: plan.OverrideName}}}, nil
}

// RefreshVariantConfiguration makes Exchange load setting overrides now
// instead of at its next periodic reload. It changes no
// configuration (hence Unchanged) and is safe to repeat, so it has no undo.
// Setups recorded before EnsureSettingOverride refreshed by itself
// (version 1 of the setup's history shape) still schedule it.
func (a *OnPrem) RefreshVariantConfiguration(ctx context.Context, t Target) (StepResult, error) {
	defer keepAlive(ctx, nil)()
	if err := refreshVariantConfig(ctx, a.Hosts.OnPrem(t)); err != nil {
		return StepResult{}, classify("refresh VariantConfiguration", err)
	}
	return StepResult{Outcome: Unchanged, Detail: "refreshed VariantConfiguration"}, nil
}

func refreshVariantConfig(ctx context.Context, r exchange.Runner) error {
	_, err := r.Run(ctx, cmd("Get-ExchangeDiagnosticInfo", "Process", "Microsoft.Exchange.Directory.TopologyService",
		"Component", "VariantConfiguration", "Argument", "Refresh"))
	return err
}

// EnsureOnPremConnector is step 6: the on-prem → Exchange Online connector.
func (a *OnPrem) EnsureOnPremConnector(ctx context.Context, in IOCInput) (StepResult, error) {
	return ensureIOC(ctx, a.Hosts.OnPrem(in.Target), SystemOnPrem, in.Spec, in.Before)
}

// EnsureAvailabilityAddressSpace is step 8, for organisations with servers
// older than Exchange 2013 SP1. An address space for the forest that
// differs is not ours to replace (there is no Set- cmdlet): it is reported.
// One exactly as this step adds it, for a forest the setup's discovery did
// not see (in.Before), was added by this run, by a call whose reply or
// result was lost, and gets the add's undo record.
func (a *OnPrem) EnsureAvailabilityAddressSpace(ctx context.Context, in AvailabilityInput) (StepResult, error) {
	defer keepAlive(ctx, nil)()
	r := a.Hosts.OnPrem(in.Target)
	rows, err := r.Run(ctx, cmd("Get-AvailabilityAddressSpace"))
	if err != nil {
		return StepResult{}, classify("read availability address spaces", err)
	}
	for _, row := range rows {
		if !strings.EqualFold(rowString(row, "ForestName"), in.Spec.ForestName) {
			continue
		}
		if strings.EqualFold(rowString(row, "AccessMethod"), "InternalProxy") && sameURL(rowString(row, "ProxyUrl"), in.Spec.ProxyURL) {
			if absent(in.Before, in.Spec.ForestName) {
				return StepResult{Outcome: Created, Detail: claimedHow(fmt.Sprintf("added availability address space %s via %s", in.Spec.ForestName, in.Spec.ProxyURL)),
					Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveAddressSpace, Name: in.Spec.ForestName, URL: in.Spec.ProxyURL, Evidence: evidenceAbsentBefore}}}, nil
			}
			return StepResult{Outcome: Unchanged, Detail: "availability address space for " + in.Spec.ForestName + " exists"}, nil
		}
		return StepResult{}, nonRetryable(ErrConflict, "availability address space %s exists with access method %s and proxy URL %s, not InternalProxy %s; it was not created by hybridflow: fix or remove it, then retry",
			in.Spec.ForestName, rowString(row, "AccessMethod"), rowString(row, "ProxyUrl"), in.Spec.ProxyURL)
	}
	if _, err := r.Run(ctx, cmd("Add-AvailabilityAddressSpace", "AccessMethod", "InternalProxy", "ProxyUrl", in.Spec.ProxyURL,
		"ForestName", in.Spec.ForestName, "UseServiceAccount", true)); err != nil {
		if exchange.IsAlreadyExists(err) {
			return StepResult{}, retryable(ErrTransient, "add availability address space %s: created concurrently; the next attempt re-reads it", in.Spec.ForestName)
		}
		return StepResult{}, classify("add availability address space "+in.Spec.ForestName, err)
	}
	return StepResult{Outcome: Created, Detail: fmt.Sprintf("added availability address space %s via %s", in.Spec.ForestName, in.Spec.ProxyURL),
		Undo: []UndoRecord{{System: SystemOnPrem, Kind: UndoRemoveAddressSpace, Name: in.Spec.ForestName}}}, nil
}

// VerifyFromOnPrem runs Test-OAuthConnectivity from on-prem to Exchange Online.
func (a *OnPrem) VerifyFromOnPrem(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	defer keepAlive(ctx, nil)()
	return verify(ctx, a.Hosts.OnPrem(in.Target), in)
}

// UndoOnPrem reverses one on-prem change this product made. Each case is
// idempotent: an object already gone counts as undone. An object proven
// this run's by its content (a record with Evidence) is removed only while
// it still is what the run sent.
func (a *OnPrem) UndoOnPrem(ctx context.Context, in UndoInput) error {
	defer keepAlive(ctx, nil)()
	r := a.Hosts.OnPrem(in.Target)
	rec := in.Record
	if rec.Evidence != "" {
		switch rec.Kind {
		case UndoRemoveAuthServer, UndoRemoveSettingOverride, UndoRemoveAddressSpace:
			if gone, err := stillSent(ctx, r, rec); gone || err != nil {
				return err
			}
		}
	}
	var err error
	switch rec.Kind {
	case UndoRemoveAuthServer:
		_, err = r.Run(ctx, cmd("Remove-AuthServer", "Identity", rec.Name))
	case UndoSetAuthServerEnabled:
		_, err = r.Run(ctx, cmd("Set-AuthServer", "Identity", rec.Name, "Enabled", rec.Enabled))
	case UndoRestoreAuthServerApp:
		err = undoAuthServerApp(ctx, r, rec)
	case UndoSetPartnerAppEnabled:
		_, err = r.Run(ctx, cmd("Set-PartnerApplication", "Identity", rec.Name, "Enabled", rec.Enabled))
	case UndoRemoveSettingOverride:
		// Refresh even when the override is already gone: an earlier
		// attempt may have removed it and then failed to refresh, and
		// Exchange keeps a loaded override until it reloads.
		if _, err = r.Run(ctx, cmd("Remove-SettingOverride", "Identity", rec.Name)); err == nil || exchange.IsNotFound(err) {
			err = refreshVariantConfig(ctx, r)
		}
	case UndoRemoveAddressSpace:
		_, err = r.Run(ctx, cmd("Remove-AvailabilityAddressSpace", "Identity", rec.Name))
	case UndoRemoveIOC, UndoRestoreIOC:
		return undoIOC(ctx, r, rec)
	default:
		return nonRetryable(ErrInvalidInput, "on-prem undo: unknown kind %q", rec.Kind)
	}
	if exchange.IsNotFound(err) {
		return nil
	}
	return classify(fmt.Sprintf("undo %s %s", rec.Kind, rec.Name), err)
}

// stillSent re-reads an object a record claims by its content: gone
// (nothing to undo), still what this run sent (nil: remove it), or changed
// since (a conflict: it is left, and the error says why).
func stillSent(ctx context.Context, r exchange.Runner, rec UndoRecord) (gone bool, err error) {
	// Each cmdlet name stays a literal: the cmdlet reference check reads
	// every call the product can send from the source.
	var read exchange.Command
	var what string
	switch rec.Kind {
	case UndoRemoveAuthServer:
		read, what = cmd("Get-AuthServer", "Identity", rec.Name), "auth server"
	case UndoRemoveSettingOverride:
		read, what = cmd("Get-SettingOverride", "Identity", rec.Name), "setting override"
	default:
		read, what = cmd("Get-AvailabilityAddressSpace", "Identity", rec.Name), "availability address space"
	}
	rows, err := r.Run(ctx, read)
	if exchange.IsNotFound(err) || (err == nil && len(rows) == 0) {
		return true, nil
	}
	if err != nil {
		return false, classify(fmt.Sprintf("read %s %s", what, rec.Name), err)
	}
	var now string
	switch rec.Kind {
	case UndoRemoveAuthServer:
		if u := rowString(rows[0], "AuthMetadataUrl"); !sameURL(u, rec.URL) {
			now = "metadata URL " + orNoneActs(u)
		}
	case UndoRemoveSettingOverride:
		if enabling, _ := plan.OverrideState(overridesFromRows(rows)); len(enabling) == 0 {
			so := overridesFromRows(rows)[0]
			now = fmt.Sprintf("section %s, parameters %s", so.Section, strings.Join(so.Parameters, ","))
		}
	default:
		if m, u := rowString(rows[0], "AccessMethod"), rowString(rows[0], "ProxyUrl"); !strings.EqualFold(m, "InternalProxy") || !sameURL(u, rec.URL) {
			now = fmt.Sprintf("access method %s, proxy URL %s", m, orNoneActs(u))
		}
	}
	if now == "" {
		return false, nil
	}
	return false, nonRetryable(ErrConflict, "%s %s was not removed: it was taken for this run's because it was %s, and it has changed since (now %s); remove it by hand if it is not needed",
		what, rec.Name, rec.Evidence, now)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

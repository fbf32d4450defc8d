package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/certs"
	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/graph"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Renewal runs the auth certificate's life: read it, create a
// successor, stage it, put its key in Entra next to the current one,
// publish it, clear the previous one, and take the retired key out of
// Entra. One struct serves two queues: the PowerShell methods run on
// hybridflow-onprem-<site> (they need Hosts), the Graph methods on
// hybridflow-cloud (they need Clients); the workflow routes each method to
// its queue, and a method reached on the wrong one fails without retrying.
//
// Every method re-reads what it is about to change and does only what is
// missing, so a renewal interrupted anywhere finishes correctly when it is
// run again: a staged certificate is reused, a published one is not
// published twice, a key already in Entra is not uploaded twice.
type Renewal struct {
	Hosts   OnPremHosts
	Clients GraphClients
	// Now is the clock for certificate and key validity; tests pin it.
	Now func() time.Time
}

// authKeyDisplayName prefixes the keys hybridflow uploads; it is the name
// setup gives them too (plan.certKey), so both look alike in Entra.
const authKeyDisplayName = "hybridflow: Exchange auth certificate "

func (a *Renewal) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *Renewal) onprem(method string, t Target) (exchange.Runner, error) {
	if a.Hosts == nil {
		return nil, nonRetryable(ErrWrongQueue, "Renewal.%s needs on-prem Exchange and runs on %s's on-prem queue; this worker has no PowerShell host", method, t.Site)
	}
	return a.Hosts.OnPrem(t), nil
}

func (a *Renewal) graph(method string, t Target) (*graph.Client, error) {
	if a.Clients == nil {
		return nil, nonRetryable(ErrWrongQueue, "Renewal.%s needs Microsoft Graph and runs on the cloud queue; this worker has no Graph client", method)
	}
	c, err := a.Clients.Graph(t)
	if err != nil {
		return nil, nonRetryable(ErrInvalidInput, "Graph client for %s: %v", t.TenantID, err)
	}
	return c, nil
}

func authConfigFromRows(rows []exchange.Row) AuthConfigView {
	if len(rows) == 0 {
		return AuthConfigView{}
	}
	r := rows[0]
	return AuthConfigView{Current: rowString(r, "CurrentCertificateThumbprint"), Next: rowString(r, "NextCertificateThumbprint"),
		NextEffective: rowTime(r, "NextCertificateEffectiveDate"), Previous: rowString(r, "PreviousCertificateThumbprint")}
}

func authCertFromRow(r exchange.Row) AuthCertificate {
	exportable := rowBool(r, "PrivateKeyExportable")
	if _, ok := r["PrivateKeyExportable"]; !ok {
		exportable = rowBool(r, "IsExportable")
	}
	return AuthCertificate{Thumbprint: strings.ToUpper(rowString(r, "Thumbprint")), Subject: rowString(r, "Subject"),
		NotBefore: rowTime(r, "NotBefore"), NotAfter: rowTime(r, "NotAfter"), Exportable: exportable, DER: rowBytes(r, "RawData")}
}

// authCertsOf keeps the certificates the auth config names and every
// other one with the auth certificate's subject: the store also holds IIS
// and SMTP certificates the renewal has no business with.
func authCertsOf(rows []exchange.Row, ac AuthConfigView) []AuthCertificate {
	var out []AuthCertificate
	for _, r := range rows {
		c := authCertFromRow(r)
		named := false
		for _, tp := range []string{ac.Current, ac.Next, ac.Previous} {
			named = named || certs.SameThumbprint(c.Thumbprint, tp)
		}
		if named || contract.IsAuthCertificateSubject(c.Subject) {
			out = append(out, c)
		}
	}
	return out
}

// readAuthConfigAndStore is the check half of every on-prem write below:
// Get-AuthConfig and Get-ExchangeCertificate in one round trip.
func readAuthConfigAndStore(ctx context.Context, r exchange.Runner, what string) (AuthConfigView, []AuthCertificate, error) {
	cmds := []exchange.Command{cmd("Get-AuthConfig"), cmd("Get-ExchangeCertificate")}
	res, err := r.RunBatch(ctx, cmds)
	if err != nil {
		return AuthConfigView{}, nil, classify(what, err)
	}
	acRows, err := batchRows(res, 0, cmds)
	if err != nil {
		return AuthConfigView{}, nil, classify(what, err)
	}
	certRows, err := batchRows(res, 1, cmds)
	if err != nil {
		return AuthConfigView{}, nil, classify(what, err)
	}
	ac := authConfigFromRows(acRows)
	return ac, authCertsOf(certRows, ac), nil
}

func readAuthConfig(ctx context.Context, r exchange.Runner, what string) (AuthConfigView, error) {
	rows, err := r.Run(ctx, cmd("Get-AuthConfig"))
	if err != nil {
		return AuthConfigView{}, classify(what, err)
	}
	return authConfigFromRows(rows), nil
}

var renewalRead = []exchange.Command{
	cmd("Get-AuthConfig"),
	cmd("Get-ExchangeCertificate"),
	cmd("Get-OrganizationConfig"),
	cmd("Get-AuthServer"),
	cmd("Get-WebServicesVirtualDirectory"),
	cmd("Get-Mailbox", "ResultSize", 1),
	cmd("Get-ExchangeServer"),
}

// ReadAuthCertificate reads, in one round trip, the auth config, the auth
// certificates, the organisation GUID, the evoSTS auth server (whose
// ApplicationIdentifier says which mode the organisation runs) and what
// verification needs. It writes nothing; `renew report` runs only this and
// ReadAuthCertificateKeys.
func (a *Renewal) ReadAuthCertificate(ctx context.Context, t Target) (AuthCertificateState, error) {
	r, err := a.onprem("ReadAuthCertificate", t)
	if err != nil {
		return AuthCertificateState{}, err
	}
	what := "read the auth certificate of " + t.TenantID
	res, err := r.RunBatch(ctx, renewalRead)
	if err != nil {
		return AuthCertificateState{}, classify(what, err)
	}
	s := AuthCertificateState{ReadAt: a.now()}
	if p, err := cloud.Lookup(t.Cloud); err == nil {
		if t.ExchangeOnlineHost != "" {
			p.ExchangeOnlineHost = t.ExchangeOnlineHost
		}
		s.VerifyCloudTarget = p.EWSURL()
	}
	var certRows []exchange.Row
	for i, c := range renewalRead {
		rows, err := batchRows(res, i, renewalRead)
		if err != nil {
			if c.Cmdlet == "Get-AuthConfig" || c.Cmdlet == "Get-ExchangeCertificate" {
				return AuthCertificateState{}, classify(what, err)
			}
			continue // the rest only helps; the workflow says what is missing
		}
		switch c.Cmdlet {
		case "Get-AuthConfig":
			s.AuthConfig = authConfigFromRows(rows)
		case "Get-ExchangeCertificate":
			certRows = rows
		case "Get-OrganizationConfig":
			if len(rows) > 0 {
				s.OrganizationGUID = strings.ToLower(rowString(rows[0], "Guid"))
			}
		case "Get-AuthServer":
			for _, row := range rows {
				if !strings.EqualFold(rowString(row, "Type"), plan.AuthServerTypeAzureAD) {
					continue
				}
				// An enabled server naming an application wins over the rest.
				app := rowString(row, "ApplicationIdentifier")
				if strings.EqualFold(app, cloud.FirstPartyAppID) {
					app = ""
				}
				if !s.EvoSTSFound || (app != "" && rowBool(row, "Enabled")) {
					s.EvoSTSFound, s.DedicatedAppID = true, app
				}
			}
		case "Get-WebServicesVirtualDirectory":
			for _, row := range rows {
				if u := rowString(row, "ExternalUrl"); u != "" && s.OnPremEWSExternalURL == "" {
					s.OnPremEWSExternalURL = u
				}
			}
		case "Get-Mailbox":
			if len(rows) > 0 {
				s.OnPremMailbox = rowString(rows[0], "PrimarySmtpAddress")
			}
		case "Get-ExchangeServer":
			for _, row := range rows {
				s.Servers = append(s.Servers, plan.ExchangeServer{Name: rowString(row, "Name"), Version: rowString(row, "AdminDisplayVersion"), Roles: rowString(row, "ServerRole")})
			}
		}
	}
	s.Certificates = authCertsOf(certRows, s.AuthConfig)
	return s, nil
}

var DecideRenewalMode = contract.DecideRenewalMode

var DecideRenewal = contract.DecideRenewal

// authCertificateServers are the servers that must hold the auth
// certificate, as Microsoft's monitoring script selects them: Mailbox or
// Client Access servers of Exchange 2013 or later (Edge Transport and
// Exchange 2010 are left out). The value is the FQDN where reported, as
// the script passes it to -Server, else the name.
func authCertificateServers(rows []exchange.Row) ([]string, []string) {
	var out, unreadable []string
	for _, r := range rows {
		name := rowString(r, "Name")
		roles := rowString(r, "ServerRole")
		if !rowBool(r, "IsMailboxServer") && !rowBool(r, "IsClientAccessServer") &&
			!plan.HasRole(roles, "Mailbox") && !plan.HasRole(roles, "ClientAccess") {
			continue
		}
		b, err := plan.ParseBuild(rowString(r, "AdminDisplayVersion"))
		if err != nil {
			unreadable = append(unreadable, name)
			continue
		}
		if b.Major != 15 {
			continue
		}
		id := rowString(r, "Fqdn")
		if id == "" {
			id = name
		}
		out = append(out, id)
	}
	return out, unreadable
}

// CheckAuthCertificateOnServers asks every server that must hold the auth
// certificate for it (Get-ExchangeCertificate -Server <s> -Thumbprint <t>,
// in one round trip), as Microsoft's monitoring script does before it
// changes anything: a "not found" (InvalidOperationException) means the
// server is reachable and lacks it; any other error means the server
// could not be asked. It writes nothing. Missing somewhere is refused
// (non-retryable) with the servers named and how to import it there;
// unreachable is retried and then pauses: publishing a certificate a server
// does not hold breaks OAuth on that server.
func (a *Renewal) CheckAuthCertificateOnServers(ctx context.Context, in ServerCertificateInput) (ServerCertificateResult, error) {
	r, err := a.onprem("CheckAuthCertificateOnServers", in.Target)
	if err != nil {
		return ServerCertificateResult{}, err
	}
	if !certs.ValidThumbprint(in.Thumbprint) {
		return ServerCertificateResult{}, nonRetryable(ErrInvalidInput, "%q is not a certificate thumbprint (40 hex digits)", in.Thumbprint)
	}
	rows, err := r.Run(ctx, cmd("Get-ExchangeServer"))
	if err != nil {
		return ServerCertificateResult{}, classify("list the Exchange servers", err)
	}
	servers, unreadable := authCertificateServers(rows)
	if len(unreadable) > 0 {
		return ServerCertificateResult{}, nonRetryable(ErrInvalidInput, "cannot read the Exchange build of %s, so it is unknown whether they must hold the auth certificate", strings.Join(unreadable, ", "))
	}
	res := ServerCertificateResult{Servers: servers}
	if len(servers) == 0 {
		return res, nonRetryable(ErrInvalidInput, "Get-ExchangeServer lists no Mailbox or Client Access server of Exchange 2013 or later to hold the auth certificate")
	}
	cmds := make([]exchange.Command, 0, len(servers))
	for _, s := range servers {
		cmds = append(cmds, cmd("Get-ExchangeCertificate", "Server", s, "Thumbprint", in.Thumbprint))
	}
	out, err := r.RunBatch(ctx, cmds)
	if err != nil {
		return res, classify("check the auth certificate on every server", err)
	}
	var missing, unreachable []string
	for i, s := range servers {
		rows, err := batchRows(out, i, cmds)
		var xe *exchange.Error
		switch {
		case err == nil && len(rows) > 0:
			res.Present = append(res.Present, s)
		case err == nil, errors.As(err, &xe) && exchange.HasType(err, TypeInvalidOperation):
			missing = append(missing, s)
		default:
			unreachable = append(unreachable, fmt.Sprintf("%s (%v)", s, err))
		}
	}
	if len(unreachable) > 0 {
		return res, retryable(ErrServerUnreachable, "could not check auth certificate %s on %s; it is published only once every Mailbox and Client Access server is known to hold it (skip this step to publish anyway)",
			in.Thumbprint, strings.Join(unreachable, "; "))
	}
	if len(missing) > 0 {
		return res, nonRetryable(ErrCertificateMissingOnServers, "auth certificate %s is missing on %s (present on %s); publishing it would break OAuth there: import it on each (Export-ExchangeCertificate -Thumbprint %s -Server <a server that has it> -BinaryEncoded -Password <password>, then Import-ExchangeCertificate -Server <server> -FileData <the exported data> -Password <password> -PrivateKeyExportable $true), then retry",
			in.Thumbprint, strings.Join(missing, ", "), orNone(strings.Join(res.Present, ", ")), in.Thumbprint)
	}
	res.StepResult = StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("auth certificate %s is on all %d Mailbox and Client Access servers (%s)", in.Thumbprint, len(servers), strings.Join(servers, ", "))}
	return res, nil
}

// TypeInvalidOperation is the exception Get-ExchangeCertificate -Server
// raises when the server answers but holds no certificate with that
// thumbprint.
const TypeInvalidOperation = "System.InvalidOperationException"

// CreateAuthCertificate returns the certificate the renewal stages,
// creating it only when there is none to reuse: the certificate already
// staged, if usable; else one with the auth subject that is newer than
// the current certificate, in the store but never staged (a run that
// stopped between New-ExchangeCertificate and Set-AuthConfig); else a new
// one, as Microsoft's monitoring script creates it.
func (a *Renewal) CreateAuthCertificate(ctx context.Context, in CreateAuthCertificateInput) (AuthCertificateResult, error) {
	r, err := a.onprem("CreateAuthCertificate", in.Target)
	if err != nil {
		return AuthCertificateResult{}, err
	}
	ac, store, err := readAuthConfigAndStore(ctx, r, "read the auth config before creating a certificate")
	if err != nil {
		return AuthCertificateResult{}, err
	}
	now := a.now()
	validAt := in.ValidAt
	if validAt.Before(now) {
		validAt = now
	}
	usable := func(c AuthCertificate) bool {
		return c.Exportable && c.ValidAt(now) && c.ValidAt(validAt) && len(c.DER) > 0 && c.NotAfter.After(in.Outlive)
	}
	res := AuthCertificateResult{AuthConfig: ac}
	if ac.Next != "" && !certs.SameThumbprint(ac.Next, ac.Current) {
		if c, ok := contract.FindAuthCertificate(store, ac.Next); ok && usable(c) {
			res.StepResult = StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("certificate %s is already staged (effective %s); reusing it", c.Thumbprint, renewalDay(ac.NextEffective))}
			res.Certificate = &c
			return res, nil
		}
	}
	cur, hasCur := contract.FindAuthCertificate(store, ac.Current)
	var spare *AuthCertificate
	for i, c := range store {
		if !contract.IsAuthCertificateSubject(c.Subject) || !usable(c) {
			continue
		}
		if certs.SameThumbprint(c.Thumbprint, ac.Current) || certs.SameThumbprint(c.Thumbprint, ac.Previous) || certs.SameThumbprint(c.Thumbprint, ac.Next) {
			continue
		}
		if hasCur && !c.NotBefore.After(cur.NotBefore) {
			continue // older than the current one: a leftover, not a successor
		}
		if spare == nil || c.NotAfter.After(spare.NotAfter) {
			spare = &store[i]
		}
	}
	if spare != nil {
		res.StepResult = StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("reusing certificate %s, created %s but never staged", spare.Thumbprint, renewalDay(spare.NotBefore))}
		res.Certificate = spare
		return res, nil
	}
	rows, err := r.Run(ctx, cmd("New-ExchangeCertificate", "KeySize", 2048, "PrivateKeyExportable", true,
		"SubjectName", "cn="+AuthCertificateSubject, "DomainName", []string{}, "Services", "SMTP"))
	if err != nil {
		return res, classify("New-ExchangeCertificate (auth certificate)", err)
	}
	if len(rows) == 0 {
		return res, retryable(ErrTransient, "New-ExchangeCertificate returned no certificate; the next attempt re-reads the store and reuses it if it was created")
	}
	c := authCertFromRow(rows[0])
	if len(c.DER) == 0 {
		// Read it back: the store has it even if the reply lacked the bytes.
		rows, err := r.Run(ctx, cmd("Get-ExchangeCertificate", "Thumbprint", c.Thumbprint))
		if err != nil || len(rows) == 0 {
			return res, retryable(ErrTransient, "read back new certificate %s: %v", c.Thumbprint, err)
		}
		c = authCertFromRow(rows[0])
	}
	res.StepResult = StepResult{Outcome: Created, Detail: fmt.Sprintf("created auth certificate %s, valid %s to %s", c.Thumbprint, renewalDay(c.NotBefore), renewalDay(c.NotAfter))}
	res.Certificate = &c
	return res, nil
}

func renewalDay(t time.Time) string {
	if t.IsZero() {
		return "(no date)"
	}
	return t.UTC().Format(time.DateOnly)
}

// stageForceWithin: Exchange asks for confirmation when the effective date
// is less than 48 hours away; -Force answers it (the emergency path).
const stageForceWithin = 48 * time.Hour

// StageAuthCertificate runs Set-AuthConfig -NewCertificateThumbprint
// -NewCertificateEffectiveDate unless the certificate is already staged
// (whatever its date: a resumed renewal keeps the date it chose first) or
// already current.
func (a *Renewal) StageAuthCertificate(ctx context.Context, in StageAuthCertificateInput) (AuthCertificateResult, error) {
	r, err := a.onprem("StageAuthCertificate", in.Target)
	if err != nil {
		return AuthCertificateResult{}, err
	}
	ac, err := readAuthConfig(ctx, r, "read the auth config before staging")
	if err != nil {
		return AuthCertificateResult{}, err
	}
	res := AuthCertificateResult{AuthConfig: ac}
	switch {
	case certs.SameThumbprint(ac.Current, in.Thumbprint):
		res.StepResult = StepResult{Outcome: Unchanged, Detail: in.Thumbprint + " is already the current certificate"}
		return res, nil
	case certs.SameThumbprint(ac.Next, in.Thumbprint):
		res.StepResult = StepResult{Outcome: Unchanged, Detail: fmt.Sprintf("%s is already staged, effective %s", in.Thumbprint, ac.NextEffective.UTC().Format(time.RFC3339))}
		return res, nil
	case ac.Next != "" && !certs.SameThumbprint(ac.Next, in.Replace):
		return res, nonRetryable(ErrConflict, "certificate %s was staged (effective %s) since the renewal read the auth config; it is not hybridflow's to replace: run the renewal again so it re-reads, or clear it by hand",
			ac.Next, renewalDay(ac.NextEffective))
	}
	p := []any{"NewCertificateThumbprint", in.Thumbprint, "NewCertificateEffectiveDate", in.EffectiveDate.UTC().Format(time.RFC3339)}
	if in.EffectiveDate.Sub(a.now()) < stageForceWithin {
		p = append(p, "Force", true)
	}
	if _, err := r.Run(ctx, cmd("Set-AuthConfig", p...)); err != nil {
		return res, classify("stage auth certificate "+in.Thumbprint, err)
	}
	if after, err := readAuthConfig(ctx, r, "read the auth config after staging"); err == nil {
		res.AuthConfig = after
	} else {
		res.AuthConfig.Next, res.AuthConfig.NextEffective = in.Thumbprint, in.EffectiveDate.UTC()
	}
	detail := fmt.Sprintf("staged %s, effective %s", in.Thumbprint, in.EffectiveDate.UTC().Format(time.RFC3339))
	if ac.Next != "" {
		detail += " (replacing unusable staged certificate " + ac.Next + ")"
	}
	res.StepResult = StepResult{Outcome: Updated, Detail: detail}
	return res, nil
}

// PublishAuthCertificate runs Set-AuthConfig -PublishCertificate when the
// certificate is staged; when it is current already, nothing. Anything
// else means someone changed the auth config under the renewal: it stops
// rather than publish a certificate it did not choose.
func (a *Renewal) PublishAuthCertificate(ctx context.Context, in AuthCertificateInput) (AuthCertificateResult, error) {
	r, err := a.onprem("PublishAuthCertificate", in.Target)
	if err != nil {
		return AuthCertificateResult{}, err
	}
	ac, err := readAuthConfig(ctx, r, "read the auth config before publishing")
	if err != nil {
		return AuthCertificateResult{}, err
	}
	res := AuthCertificateResult{AuthConfig: ac}
	if certs.SameThumbprint(ac.Current, in.Thumbprint) {
		res.StepResult = StepResult{Outcome: Unchanged, Detail: in.Thumbprint + " is already the current certificate"}
		return res, nil
	}
	if !certs.SameThumbprint(ac.Next, in.Thumbprint) {
		return res, nonRetryable(ErrConflict, "certificate %s is neither current nor staged (current %s, staged %q): the auth config changed under the renewal; run it again so it re-reads",
			in.Thumbprint, ac.Current, ac.Next)
	}
	if _, err := r.Run(ctx, cmd("Set-AuthConfig", "PublishCertificate", true)); err != nil {
		return res, classify("publish auth certificate "+in.Thumbprint, err)
	}
	after, err := readAuthConfig(ctx, r, "read the auth config after publishing")
	if err != nil {
		after = AuthConfigView{Current: in.Thumbprint, Previous: ac.Current}
	}
	res.AuthConfig = after
	res.StepResult = StepResult{Outcome: Updated, Detail: fmt.Sprintf("published %s; %s is now the previous certificate", in.Thumbprint, orNone(ac.Current))}
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ClearPreviousAuthCertificate runs Set-AuthConfig -ClearPreviousCertificate
// once the certificate named is current (and only then), and reports the
// auth certificates now retired, whose keys RemoveRetiredAuthKeys may take
// out of Entra: that order is the point of the step.
func (a *Renewal) ClearPreviousAuthCertificate(ctx context.Context, in AuthCertificateInput) (AuthCertificateResult, error) {
	r, err := a.onprem("ClearPreviousAuthCertificate", in.Target)
	if err != nil {
		return AuthCertificateResult{}, err
	}
	ac, store, err := readAuthConfigAndStore(ctx, r, "read the auth config before clearing the previous certificate")
	if err != nil {
		return AuthCertificateResult{}, err
	}
	res := AuthCertificateResult{AuthConfig: ac}
	if !certs.SameThumbprint(ac.Current, in.Thumbprint) {
		return res, nonRetryable(ErrConflict, "the current certificate is %s, not %s: the previous certificate is cleared only after the new one is current", orNone(ac.Current), in.Thumbprint)
	}
	if ac.Previous == "" {
		res.StepResult = StepResult{Outcome: Unchanged, Detail: "no previous certificate to clear"}
	} else {
		if _, err := r.Run(ctx, cmd("Set-AuthConfig", "ClearPreviousCertificate", true)); err != nil {
			return res, classify("clear the previous auth certificate", err)
		}
		res.StepResult = StepResult{Outcome: Updated, Detail: "cleared previous certificate " + ac.Previous}
		res.AuthConfig.Previous = ""
	}
	res.Retired = contract.RetiredAuthCertificates(store, res.AuthConfig)
	return res, nil
}

type keyObject struct {
	state AuthKeysState
	keys  []graph.KeyCredential
}

func (a *Renewal) keyObject(ctx context.Context, c *graph.Client, in AuthKeysInput, mustExist bool) (keyObject, error) {
	var o keyObject
	o.state.Mode = in.Mode
	switch in.Mode {
	case plan.ModeDedicatedApp:
		o.state.ObjectKind, o.state.Name = "application", in.AppName
		if in.AppName == "" {
			return o, nonRetryable(ErrInvalidInput, "dedicated mode needs the application's name (the organization GUID is unknown)")
		}
		app, err := dedicatedApplication(ctx, c, in.AppName)
		if errors.Is(err, graph.ErrNotFound) {
			if mustExist {
				return o, nonRetryable(ErrNotSetUp, "no application named %s in tenant %s: the tenant is not set up for the dedicated Exchange hybrid application; run setup first, or renew with --mode %s",
					in.AppName, in.Target.TenantID, plan.ModeLegacyFirstParty)
			}
			return o, nil
		}
		if err != nil {
			return o, classify("read application "+in.AppName, err)
		}
		o.state.Found, o.state.ObjectID, o.state.AppID, o.keys = true, app.ID, app.AppID, app.KeyCredentials
	case plan.ModeLegacyFirstParty:
		o.state.ObjectKind, o.state.Name, o.state.AppID = "servicePrincipal", "Office 365 Exchange Online", cloud.FirstPartyAppID
		sp, err := c.ServicePrincipalByAppID(ctx, cloud.FirstPartyAppID)
		if errors.Is(err, graph.ErrNotFound) {
			if mustExist {
				return o, nonRetryable(ErrNotSetUp, "tenant %s has no Exchange Online service principal (%s); is Exchange Online licensed?", in.Target.TenantID, cloud.FirstPartyAppID)
			}
			return o, nil
		}
		if err != nil {
			return o, classify("read the Exchange Online service principal", err)
		}
		o.state.Found, o.state.ObjectID, o.keys = true, sp.ID, sp.KeyCredentials
	default:
		return o, nonRetryable(ErrInvalidInput, "unknown mode %q (%s or %s)", in.Mode, plan.ModeDedicatedApp, plan.ModeLegacyFirstParty)
	}
	o.state.Keys = keyInfos(toPlanKeys(o.keys))
	return o, nil
}

func keyInfos(ks []plan.Key) []AuthKeyInfo {
	out := make([]AuthKeyInfo, 0, len(ks))
	for _, k := range ks {
		tp := k.Thumbprint
		if len(k.DER) > 0 {
			tp = certs.Thumbprint(k.DER)
		}
		out = append(out, AuthKeyInfo{Thumbprint: strings.ToUpper(tp), DisplayName: k.DisplayName, Start: k.Start, End: k.End})
	}
	return out
}

func (a *Renewal) writeKeys(ctx context.Context, c *graph.Client, o keyObject, keys []plan.Key) error {
	gk := toGraphKeys(keys)
	if o.state.ObjectKind == "application" {
		return c.UpdateApplication(ctx, o.state.ObjectID, graph.ApplicationPatch{KeyCredentials: &gk})
	}
	return c.UpdateServicePrincipal(ctx, o.state.ObjectID, graph.Patch{KeyCredentials: &gk})
}

// confirmKeys re-reads the collection after a PATCH: the keys written must
// be there and the keys removed gone. The collection is written whole with
// no precondition, so a writer elsewhere that PATCHed in between can undo
// this write; then the attempt fails retryably and the next one reads and
// merges again (a thumbprint is never uploaded twice).
func (a *Renewal) confirmKeys(ctx context.Context, c *graph.Client, in AuthKeysInput, present, absent []string) (AuthKeysState, error) {
	o, err := a.keyObject(ctx, c, in, true)
	if err != nil {
		return AuthKeysState{}, err
	}
	var wrong []string
	for _, tp := range present {
		if !o.state.Has(tp) {
			wrong = append(wrong, strings.ToUpper(tp)+" missing")
		}
	}
	for _, tp := range absent {
		if o.state.Has(tp) {
			wrong = append(wrong, strings.ToUpper(tp)+" still there")
		}
	}
	if len(wrong) > 0 {
		return AuthKeysState{}, retryable(ErrTransient, "re-read of %s %s after writing its keys: %s (another writer changed the collection?); reading and merging again",
			o.state.ObjectKind, o.state.Name, strings.Join(wrong, ", "))
	}
	return o.state, nil
}

// ReadAuthCertificateKeys reads the keys of the object the tenant's auth
// certificates belong on. A missing object is reported (Found=false), not
// an error: the report runs on tenants that may not be set up.
func (a *Renewal) ReadAuthCertificateKeys(ctx context.Context, in AuthKeysInput) (AuthKeysState, error) {
	c, err := a.graph("ReadAuthCertificateKeys", in.Target)
	if err != nil {
		return AuthKeysState{}, err
	}
	o, err := a.keyObject(ctx, c, in, false)
	return o.state, err
}

func authCertKey(c AuthCertificate) plan.Key {
	tp := strings.ToUpper(c.Thumbprint)
	if len(c.DER) > 0 {
		tp = certs.Thumbprint(c.DER)
	}
	return plan.Key{Thumbprint: tp, DisplayName: authKeyDisplayName + tp, Type: plan.KeyTypeX509, Usage: plan.KeyUsageVerify,
		Start: c.NotBefore.UTC(), End: c.NotAfter.UTC(), DER: c.DER}
}

// UploadAuthCertificateKeys adds the certificates' keys NEXT TO the keys
// already there (plan.MergeKeys: the whole collection is sent,
// every unexpired key stays, a thumbprint is never uploaded twice), in one
// PATCH or none.
func (a *Renewal) UploadAuthCertificateKeys(ctx context.Context, in UploadAuthKeysInput) (AuthKeysResult, error) {
	c, err := a.graph("UploadAuthCertificateKeys", in.Target)
	if err != nil {
		return AuthKeysResult{}, err
	}
	keys := make([]plan.Key, 0, len(in.Certificates))
	for _, cert := range in.Certificates {
		if len(cert.DER) == 0 {
			return AuthKeysResult{}, nonRetryable(ErrInvalidInput, "certificate %s came without its public certificate bytes; it cannot be uploaded", cert.Thumbprint)
		}
		keys = append(keys, authCertKey(cert))
	}
	now := a.now()
	if err := checkUploads(keys, now); err != nil {
		return AuthKeysResult{}, err
	}
	o, err := a.keyObject(ctx, c, in.AuthKeysInput, true)
	if err != nil {
		return AuthKeysResult{}, err
	}
	kd := plan.MergeKeys(toPlanKeys(o.keys), keys, now, plan.MergeOptions{})
	if len(kd.MissingDER) > 0 {
		return AuthKeysResult{}, retryable(ErrTransient, "Graph returned keys without their certificate (%s); re-reading before any write", strings.Join(kd.MissingDER, ", "))
	}
	res := AuthKeysResult{StepResult: StepResult{Outcome: Unchanged, ObjectID: o.state.ObjectID, AppID: o.state.AppID, Detail: kd.Reason}, Keys: o.state}
	if !kd.Changed {
		return res, nil
	}
	if err := a.writeKeys(ctx, c, o, kd.Keys); err != nil {
		return AuthKeysResult{}, classify(fmt.Sprintf("upload keys to %s %s", o.state.ObjectKind, o.state.Name), err)
	}
	after, err := a.confirmKeys(ctx, c, in.AuthKeysInput, kd.Added, nil)
	if err != nil {
		return AuthKeysResult{}, err
	}
	res.Outcome = Updated
	res.Keys = after
	if len(kd.Added) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRemoveKeys, ObjectKind: o.state.ObjectKind, ObjectID: o.state.ObjectID, Thumbprints: kd.Added})
	}
	if len(kd.Dropped) > 0 {
		res.Undo = append(res.Undo, UndoRecord{System: SystemEntra, Kind: UndoRestoreKeys, ObjectKind: o.state.ObjectKind, ObjectID: o.state.ObjectID, Keys: droppedKeys(kd.Dropped)})
	}
	return res, nil
}

// RemoveRetiredAuthKeys takes the keys of retired auth certificates off
// the object (plan.RemoveKeys: everything else stays; expired keys go
// along only with a listed one). The workflow calls it only after
// ClearPreviousAuthCertificate, with the list that step returned.
func (a *Renewal) RemoveRetiredAuthKeys(ctx context.Context, in RemoveRetiredAuthKeysInput) (AuthKeysResult, error) {
	c, err := a.graph("RemoveRetiredAuthKeys", in.Target)
	if err != nil {
		return AuthKeysResult{}, err
	}
	for _, tp := range in.Thumbprints {
		for _, k := range in.Keep {
			if certs.SameThumbprint(tp, k) {
				return AuthKeysResult{}, nonRetryable(ErrInvalidInput, "refusing to remove the key of certificate %s: it is in service", tp)
			}
		}
	}
	o, err := a.keyObject(ctx, c, in.AuthKeysInput, true)
	if err != nil {
		return AuthKeysResult{}, err
	}
	res := AuthKeysResult{StepResult: StepResult{Outcome: Unchanged, ObjectID: o.state.ObjectID, AppID: o.state.AppID}, Keys: o.state}
	if len(in.Thumbprints) == 0 {
		res.Detail = "no retired certificate"
		return res, nil
	}
	kd := plan.RemoveKeys(toPlanKeys(o.keys), in.Thumbprints, a.now())
	if len(kd.MissingDER) > 0 {
		return AuthKeysResult{}, retryable(ErrTransient, "Graph returned keys without their certificate (%s); re-reading before any write", strings.Join(kd.MissingDER, ", "))
	}
	res.Detail = kd.Reason
	if !kd.Changed {
		return res, nil
	}
	if err := a.writeKeys(ctx, c, o, kd.Keys); err != nil {
		return AuthKeysResult{}, classify(fmt.Sprintf("remove retired keys from %s %s", o.state.ObjectKind, o.state.Name), err)
	}
	after, err := a.confirmKeys(ctx, c, in.AuthKeysInput, nil, in.Thumbprints)
	if err != nil {
		return AuthKeysResult{}, err
	}
	res.Outcome = Removed
	res.Keys = after
	res.Undo = []UndoRecord{{System: SystemEntra, Kind: UndoRestoreKeys, ObjectKind: o.state.ObjectKind, ObjectID: o.state.ObjectID, Keys: droppedKeys(kd.Dropped)}}
	return res, nil
}

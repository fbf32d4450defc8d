package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/exchange/online"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Steps and reads both Exchange sides share: IntraOrganizationConnectors
// (steps 6 and 7) and Test-OAuthConnectivity (verification).

func iocFromRow(r exchange.Row) plan.IOC {
	return plan.IOC{
		Name:                 rowString(r, "Name"),
		DiscoveryEndpoint:    rowString(r, "DiscoveryEndpoint"),
		TargetAddressDomains: rowStrings(r, "TargetAddressDomains"),
		Enabled:              rowBool(r, "Enabled"),
	}
}

func sameFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := make([]string, len(a))
	y := make([]string, len(b))
	for i := range a {
		x[i], y[i] = strings.ToLower(a[i]), strings.ToLower(b[i])
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// withoutFold is have without the members of drop, ignoring case.
func withoutFold(have, drop []string) []string {
	var out []string
	for _, h := range have {
		if !slices.ContainsFunc(drop, func(d string) bool { return strings.EqualFold(h, d) }) {
			out = append(out, h)
		}
	}
	return out
}

func sameURL(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// Properties a restore-ioc record may name in Fields.
const (
	fieldDiscoveryEndpoint    = "DiscoveryEndpoint"
	fieldTargetAddressDomains = "TargetAddressDomains"
	fieldEnabled              = "Enabled"
)

// ensureIOC is steps 6 and 7 on either side, decided by plan.DecideIOC on
// a fresh read exactly as the plan decided it: a connector of any name
// that serves the wanted domains through an endpoint Microsoft uses (the
// Hybrid Configuration Wizard's "HybridIOC - <GUID>") is adopted, and
// gains what it lacks (a wanted domain no connector lists, Enabled);
// a connector that claims a wanted domain through another endpoint is
// reported, never changed; hybridflow's own is created when none serves
// the domains. Each update's undo record names only what it changed.
//
// hybridflow's own connector found exactly as it is sent, which the
// setup's discovery did not see (before), was created by this run, by a
// call whose result was lost: it is reported as created, with the undo
// record the create would have had (proven by content, as createIOC's).
func ensureIOC(ctx context.Context, r exchange.Runner, sys System, spec plan.IOCSpec, before *Before) (StepResult, error) {
	what := fmt.Sprintf("ensure IntraOrganizationConnector %s", spec.Name)
	// Several connectors may change in one call: an earlier attempt's undo
	// records come back from its heartbeat (progress).
	p := startProgress(ctx)
	defer p.keepAlive()()
	rows, err := r.Run(ctx, cmd("Get-IntraOrganizationConnector"))
	if err != nil {
		return StepResult{}, p.fail(classify(what, err))
	}
	list := make([]plan.IOC, 0, len(rows))
	for _, row := range rows {
		list = append(list, iocFromRow(row))
	}
	dec := plan.DecideIOC(string(sys), list, spec)
	switch {
	case dec.Change == plan.ChangeBlocked:
		return StepResult{}, p.fail(nonRetryable(ErrConflict, "%s: %s", what, dec.Reason))
	case dec.Create:
		res, err := createIOC(ctx, r, sys, spec)
		if err != nil {
			return StepResult{}, p.fail(err)
		}
		p.add(res, false)
		return p.done(), nil
	}
	if i := slices.IndexFunc(list, func(c plan.IOC) bool { return strings.EqualFold(c.Name, spec.Name) }); i >= 0 &&
		absent(before, spec.Name) && plan.IsSentIOC(list[i], spec) && !p.holds(sys, UndoRemoveIOC, spec.Name) {
		p.add(StepResult{Outcome: Created, Detail: claimedHow(fmt.Sprintf("created %s → %s for %s", spec.Name, spec.DiscoveryEndpoint, strings.Join(spec.TargetAddressDomains, ", "))),
			Undo: []UndoRecord{sentIOCRecord(sys, spec, evidenceAbsentBefore)}}, len(dec.Updates) > 0)
		if len(dec.Updates) == 0 {
			return p.done(), nil
		}
	}
	switch {
	case len(dec.Updates) == 0:
		var names []string
		for _, c := range dec.Adopted {
			names = append(names, fmt.Sprintf("%q", c.Name))
		}
		detail := spec.Name + " already as wanted"
		if len(names) > 0 {
			detail = fmt.Sprintf("adopted connector %s: already serves %s", strings.Join(names, ", "), strings.Join(spec.TargetAddressDomains, ", "))
		}
		p.add(StepResult{Outcome: Unchanged, Detail: detail}, false)
		return p.done(), nil
	}
	for i, u := range dec.Updates {
		params := []any{"Identity", u.Before.Name}
		prev := u.Before
		rec := UndoRecord{System: sys, Kind: UndoRestoreIOC, Name: u.Before.Name, IOC: &prev}
		var did []string
		if u.DiscoveryEndpoint != "" {
			params = append(params, "DiscoveryEndpoint", u.DiscoveryEndpoint)
			rec.Fields = append(rec.Fields, fieldDiscoveryEndpoint)
			did = append(did, fmt.Sprintf("discovery endpoint %s (was %s)", u.DiscoveryEndpoint, orNoneActs(u.Before.DiscoveryEndpoint)))
		}
		if len(u.AddDomains) > 0 {
			params = append(params, "TargetAddressDomains", u.Domains())
			rec.Fields, rec.Added = append(rec.Fields, fieldTargetAddressDomains), u.AddDomains
			did = append(did, "target domains gain "+strings.Join(u.AddDomains, ", "))
		}
		if u.Enable {
			params = append(params, "Enabled", true)
			rec.Fields = append(rec.Fields, fieldEnabled)
			did = append(did, "enabled")
		}
		if _, err := r.Run(ctx, cmd("Set-IntraOrganizationConnector", params...)); err != nil {
			return StepResult{}, p.fail(classify(what, err))
		}
		p.add(StepResult{Outcome: Updated, Detail: fmt.Sprintf("connector %q: %s", u.Before.Name, strings.Join(did, "; ")), Undo: []UndoRecord{rec}}, i < len(dec.Updates)-1)
	}
	return p.done(), nil
}

// createIOC runs New-IntraOrganizationConnector for spec. When the reply
// is lost (the PowerShell host died, the connection dropped, a time-out)
// or Exchange answers that the connector already exists, the call may
// have created it: the connector is read back by name and taken for the
// one this call made only when it is exactly what was sent
// (plan.IsSentIOC). Its undo record then says how it was proven (Evidence)
// and carries what was sent, so that the undo removes it only while it is
// still that connector.
func createIOC(ctx context.Context, r exchange.Runner, sys System, spec plan.IOCSpec) (StepResult, error) {
	what := fmt.Sprintf("create IntraOrganizationConnector %s", spec.Name)
	detail := fmt.Sprintf("created %s → %s for %s", spec.Name, spec.DiscoveryEndpoint, strings.Join(spec.TargetAddressDomains, ", "))
	_, err := r.Run(ctx, cmd("New-IntraOrganizationConnector", "Name", spec.Name, "DiscoveryEndpoint", spec.DiscoveryEndpoint,
		"TargetAddressDomains", spec.TargetAddressDomains, "Enabled", true))
	if err == nil {
		return StepResult{Outcome: Created, Detail: detail, Undo: []UndoRecord{{System: sys, Kind: UndoRemoveIOC, Name: spec.Name}}}, nil
	}
	exists := exchange.IsAlreadyExists(err)
	if !exists && !exchangeOutcomeUnknown(err) {
		return StepResult{}, classify(what, err)
	}
	rows, rerr := r.Run(ctx, cmd("Get-IntraOrganizationConnector", "Identity", spec.Name))
	if rerr != nil || len(rows) == 0 {
		if exists {
			// Someone created it between our read and write: read again next attempt.
			return StepResult{}, retryable(ErrTransient, "%s: created concurrently; the next attempt re-reads it", what)
		}
		return StepResult{}, classify(what, err) // not there (or not readable now): retried
	}
	got := iocFromRow(rows[0])
	if !plan.IsSentIOC(got, spec) {
		return StepResult{}, retryable(ErrTransient, "%s: a connector of that name exists that is not the one this call sends (%s for %s, enabled %v); the next attempt re-reads it",
			what, orNoneActs(got.DiscoveryEndpoint), strings.Join(got.TargetAddressDomains, ", "), got.Enabled)
	}
	how := "the reply to New-IntraOrganizationConnector was lost"
	if exists {
		how = "Exchange answered that it already exists"
	}
	return StepResult{Outcome: Created, Detail: fmt.Sprintf("%s (%s; read back by name, it is exactly what was sent)", detail, how),
		Undo: []UndoRecord{sentIOCRecord(sys, spec, how+"; read back by name, it matched what was sent")}}, nil
}

// sentIOCRecord is the undo record of a connector proven this run's by
// its content: it carries what was sent, and its undo removes the
// connector only while it still is that.
func sentIOCRecord(sys System, spec plan.IOCSpec, evidence string) UndoRecord {
	sent := plan.IOC{Name: spec.Name, DiscoveryEndpoint: spec.DiscoveryEndpoint, TargetAddressDomains: slices.Clone(spec.TargetAddressDomains), Enabled: true}
	return UndoRecord{System: sys, Kind: UndoRemoveIOC, Name: spec.Name, IOC: &sent, Evidence: evidence}
}

// exchangeOutcomeUnknown reports whether a cmdlet's failure leaves its
// outcome unknown: the host died or timed out under it, or the call never
// got an answer (a transport failure, an Exchange Online 5xx). A cmdlet
// that answered with an error of its own, a throttled or refused request,
// did not do what it was asked.
func exchangeOutcomeUnknown(err error) bool {
	if exchange.HasType(err, exchange.TypeHostDied) || exchange.HasType(err, exchange.TypeTimeout) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var xe *exchange.Error
	var te *online.ThrottledError
	var ae *online.AccessDeniedError
	var pe *online.ProtocolError
	switch {
	case errors.As(err, &xe), errors.As(err, &te), errors.As(err, &ae):
		return false
	case errors.As(err, &pe):
		return pe.StatusCode >= 500 || pe.StatusCode == 0
	}
	return true
}

func orNoneActs(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// undoIOC reverses ensureIOC. A restore record with Fields puts back only
// what it names, against the connector as it is now (a target domain
// added since stays); an older record restores every property.
func undoIOC(ctx context.Context, r exchange.Runner, rec UndoRecord) error {
	switch rec.Kind {
	case UndoRemoveIOC:
		if rec.IOC != nil {
			// Proven ours by its content (Evidence): removed only while it
			// is still what this run sent.
			rows, err := r.Run(ctx, cmd("Get-IntraOrganizationConnector", "Identity", rec.Name))
			if exchange.IsNotFound(err) || (err == nil && len(rows) == 0) {
				return nil
			}
			if err != nil {
				return classify("read IntraOrganizationConnector "+rec.Name, err)
			}
			cur := iocFromRow(rows[0])
			if !sameURL(cur.DiscoveryEndpoint, rec.IOC.DiscoveryEndpoint) || !sameFold(cur.TargetAddressDomains, rec.IOC.TargetAddressDomains) {
				return nonRetryable(ErrConflict, "IntraOrganizationConnector %s was not removed: it was taken for this run's because it matched what the run sent (%s), and it has changed since (now %s for %s); remove it by hand if it is not needed",
					rec.Name, rec.Evidence, orNoneActs(cur.DiscoveryEndpoint), strings.Join(cur.TargetAddressDomains, ", "))
			}
		}
		_, err := r.Run(ctx, cmd("Remove-IntraOrganizationConnector", "Identity", rec.Name))
		if exchange.IsNotFound(err) {
			return nil
		}
		return classify("remove IntraOrganizationConnector "+rec.Name, err)
	case UndoRestoreIOC:
		if rec.IOC == nil {
			return nonRetryable(ErrInvalidInput, "restore IntraOrganizationConnector %s: the record has no previous values", rec.Name)
		}
		if len(rec.Fields) == 0 {
			_, err := r.Run(ctx, cmd("Set-IntraOrganizationConnector", "Identity", rec.Name, "DiscoveryEndpoint", rec.IOC.DiscoveryEndpoint,
				"TargetAddressDomains", rec.IOC.TargetAddressDomains, "Enabled", rec.IOC.Enabled))
			return classify("restore IntraOrganizationConnector "+rec.Name, err)
		}
		params := []any{"Identity", rec.Name}
		if slices.Contains(rec.Fields, fieldDiscoveryEndpoint) {
			params = append(params, "DiscoveryEndpoint", rec.IOC.DiscoveryEndpoint)
		}
		if slices.Contains(rec.Fields, fieldTargetAddressDomains) {
			rows, err := r.Run(ctx, cmd("Get-IntraOrganizationConnector", "Identity", rec.Name))
			if exchange.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return classify("read IntraOrganizationConnector "+rec.Name, err)
			}
			if len(rows) > 0 {
				cur := iocFromRow(rows[0]).TargetAddressDomains
				if keep := withoutFold(cur, rec.Added); len(keep) > 0 && !sameFold(keep, cur) {
					params = append(params, "TargetAddressDomains", keep)
				}
			}
		}
		if slices.Contains(rec.Fields, fieldEnabled) {
			params = append(params, "Enabled", rec.IOC.Enabled)
		}
		if len(params) == 2 {
			return nil
		}
		_, err := r.Run(ctx, cmd("Set-IntraOrganizationConnector", params...))
		if exchange.IsNotFound(err) {
			return nil
		}
		return classify("restore IntraOrganizationConnector "+rec.Name, err)
	}
	return nonRetryable(ErrInvalidInput, "unknown undo kind %q for an IntraOrganizationConnector", rec.Kind)
}

// noMailboxNoise is the documented message Test-OAuthConnectivity prints
// even when the test passes; it must never fail a check.
const noMailboxNoise = "The SMTP address has no mailbox associated with it."

// verify runs Test-OAuthConnectivity and reports the outcome as data. Only
// ResultType decides: the Detail is for people (and the noise sentence
// above appears in successful runs too).
func verify(ctx context.Context, r exchange.Runner, in VerifyInput) (VerifyResult, error) {
	p := []any{"Service", "EWS", "TargetUri", in.TargetURI}
	if in.Mailbox != "" {
		p = append(p, "Mailbox", in.Mailbox)
	}
	rows, err := r.Run(ctx, cmd("Test-OAuthConnectivity", p...))
	if err != nil {
		return VerifyResult{}, classify("Test-OAuthConnectivity to "+in.TargetURI, err)
	}
	if len(rows) == 0 {
		return VerifyResult{Detail: "Test-OAuthConnectivity returned no result"}, nil
	}
	detail := strings.TrimSpace(strings.ReplaceAll(rowString(rows[0], "Detail"), noMailboxNoise, ""))
	return VerifyResult{Success: strings.EqualFold(rowString(rows[0], "ResultType"), "Success"), Detail: detail}, nil
}

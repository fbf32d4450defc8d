package contract

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/internal/plan"
)

// Stable error types of the Lync steps.
const (
	// ErrReplicationLagging: a Central Management store replica was still
	// not up to date when the bounded wait ended (non-retryable: the wait
	// was the retry; an operator looks at the named replicas).
	ErrReplicationLagging = "ReplicationLagging"
	// ErrEdgeNotUpdated: the Edge Server's replica (or another replica
	// checked with it) has not yet applied a snapshot made after the
	// provider was written (retryable).
	ErrEdgeNotUpdated = "EdgeNotUpdated"
)

// Undo kinds of the Lync steps (System SystemLync).
const (
	// UndoLyncSetAllowFederatedUsers sets AllowFederatedUsers back to Enabled.
	UndoLyncSetAllowFederatedUsers = "lync-set-allow-federated-users"
	// UndoLyncRemoveHostingProvider removes the provider Name this run created.
	UndoLyncRemoveHostingProvider = "lync-remove-hosting-provider"
	// UndoLyncRestoreHostingProvider puts Provider back exactly: set back in
	// place, or removed and re-created when the ProxyFqdn differs.
	UndoLyncRestoreHostingProvider = "lync-restore-hosting-provider"
)

// LyncPlanInput is what the Lync plan is computed from. EdgeFqdns names
// the Edge Servers' replicas the Edge step checks (none: every replica).
type LyncPlanInput struct {
	Cloud             string            `json:"cloud"`
	ProxyFqdnOverride string            `json:"proxy_fqdn_override,omitempty"`
	Observed          plan.LyncObserved `json:"observed"`
	EdgeFqdns         []string          `json:"edge_fqdns,omitempty"`
}

// LyncPlan is the desired hosting provider and the ordered actions.
type LyncPlan struct {
	Desired  plan.LyncHostingProvider `json:"desired"`
	Actions  []plan.Action            `json:"actions"`
	Warnings []string                 `json:"warnings,omitempty"`
}

// LyncStepResult is what every Lync step returns: a step result (outcome,
// detail, undo records) with what the read steps observed.
type LyncStepResult struct {
	Outcome  Outcome      `json:"outcome"`
	Detail   string       `json:"detail"`
	Undo     []UndoRecord `json:"undo,omitempty"`
	Warnings []string     `json:"warnings,omitempty"`
	// Replication: the last status read and how many reads it took.
	Replicas []plan.LyncReplica `json:"replicas,omitempty"`
	Polls    int                `json:"polls,omitempty"`
	// External access: every policy, and those that allow remote users.
	Policies []plan.LyncExternalAccessPolicy `json:"policies,omitempty"`
	Allowing []string                        `json:"allowing,omitempty"`
	// Provider is what the step found or left (hosting provider, Edge).
	Provider *plan.LyncHostingProvider `json:"provider,omitempty"`
	// Baseline is the replication status the hosting-provider step read
	// just before its first write; the Edge step wants a snapshot newer
	// than each replica's here. Empty when the step wrote nothing.
	Baseline []plan.LyncReplica `json:"baseline,omitempty"`
}

// LyncProviderInput names the provider a step ensures or confirms. The
// Edge step also takes the hosting-provider step's Baseline and the Edge
// Servers' FQDNs (none: every replica is checked).
type LyncProviderInput struct {
	Target    Target                   `json:"target"`
	Desired   plan.LyncHostingProvider `json:"desired"`
	Baseline  []plan.LyncReplica       `json:"baseline,omitempty"`
	EdgeFqdns []string                 `json:"edge_fqdns,omitempty"`
}

// LyncReplicationInput bounds the replication wait.
type LyncReplicationInput struct {
	Target Target `json:"target"`
	// Timeout bounds the whole wait (default 15m), across retried attempts;
	// PollInterval is the time between status reads (default 10s).
	Timeout      time.Duration `json:"timeout,omitempty"`
	PollInterval time.Duration `json:"poll_interval,omitempty"`
}

// LyncUndoInput is what UndoLync receives.
type LyncUndoInput struct {
	Target Target     `json:"target"`
	Record UndoRecord `json:"record"`
}

// Defaults of the replication wait.
const (
	DefaultLyncReplicationTimeout = 15 * time.Minute
	DefaultLyncReplicationPoll    = 10 * time.Second
)

// LyncUndoFromError returns the undo record a failed Lync step attached to
// its error, if any.
func LyncUndoFromError(err error) (UndoRecord, bool) {
	var app *temporal.ApplicationError
	var rec UndoRecord
	if !errors.As(err, &app) || !app.HasDetails() || app.Details(&rec) != nil || rec.Kind == "" {
		return UndoRecord{}, false
	}
	return rec, true
}

// LyncEdgeFqdns checks and normalises the Edge Servers' FQDNs (edge_fqdns).
func LyncEdgeFqdns(in []string) ([]string, error) {
	var out []string
	for _, f := range in {
		n := plan.LyncNormFqdn(f)
		if n == "" || strings.ContainsAny(n, " /:@\\*") || !strings.Contains(n, ".") {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("edge_fqdns: %q is not a fully qualified domain name", f), ErrInvalidInput, nil)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

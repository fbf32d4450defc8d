package steps

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/hybridflow/hybridflow/contract"
	"github.com/hybridflow/hybridflow/internal/plan"
)

// Verify runs Test-OAuthConnectivity in both directions until both pass,
// while the configuration propagates, once every earlier step has ended.
// It changes nothing: nothing to undo.
var Verify = Step{Name: plan.StepVerify, Summary: "Verify: Test-OAuthConnectivity in both directions",
	Decide: plan.DecideVerifyStep, Check: true, AfterAll: true, Exec: func(r *Run, a plan.Action) error {
		return r.verify(a.Step)
	}}

// Verification defaults: how long to wait for propagation, the first wait
// between rounds, and the longest.
const (
	DefaultVerifyDeadline = 30 * time.Minute
	DefaultVerifyInterval = 15 * time.Second
	MaxVerifyInterval     = 5 * time.Minute
)

// Rounds runs try until it reports done, waiting with c.Sleep between
// rounds: first interval, doubling up to MaxVerifyInterval. When the next
// wait would reach the deadline (counted from the first round), it stops
// with done false. It returns the number of rounds run.
func Rounds(c Clock, deadline, interval time.Duration, try func(round int) (done bool, err error)) (int, bool, error) {
	end := c.Now().Add(deadline)
	wait := interval
	for round := 1; ; round++ {
		done, err := try(round)
		if err != nil || done {
			return round, done, err
		}
		if !c.Now().Add(wait).Before(end) {
			return round, false, nil
		}
		if err := c.Sleep(wait); err != nil {
			return round, false, err
		}
		wait = min(wait*2, MaxVerifyInterval)
	}
}

// Verdict is a verification result as the state query shows it.
func Verdict(r contract.VerifyResult) string {
	if r.Success {
		return "Success"
	}
	return "Error: " + r.Detail
}

// verify tests both directions until both succeed or the deadline passes.
func (r *Run) verify(step plan.Step) error {
	d, t := r.Plan.Desired, r.Target
	deadline := cmp(r.VerifyDeadline, DefaultVerifyDeadline)
	if *r.Verification == nil {
		*r.Verification = map[string]string{}
	}
	var on, cl contract.VerifyResult
	rounds, ok, err := Rounds(r.C, deadline, cmp(r.VerifyInterval, DefaultVerifyInterval), func(round int) (bool, error) {
		fOn := r.C.OnPrem(contract.ActVerifyFromOnPrem, contract.VerifyInput{Target: t, TargetURI: d.VerifyCloudTarget, Mailbox: d.OnPremMailbox})
		fCl := r.C.CloudRead(contract.ActVerifyFromOnline, contract.VerifyInput{Target: t, TargetURI: d.VerifyOnPremTarget, Mailbox: d.CloudMailbox})
		if err := fOn.Get(&on); err != nil {
			return false, err
		}
		if err := fCl.Get(&cl); err != nil {
			return false, err
		}
		(*r.Verification)["onprem-to-online"] = Verdict(on)
		(*r.Verification)["online-to-onprem"] = Verdict(cl)
		return on.Success && cl.Success, nil
	})
	switch {
	case err != nil:
		return err
	case ok:
		st := r.L.State(string(step))
		st.Outcome = "verified"
		st.Detail = fmt.Sprintf("Test-OAuthConnectivity succeeded in both directions (round %d)", rounds)
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("verification did not succeed within %s (%d rounds): on-prem → Exchange Online: %s; Exchange Online → on-prem: %s",
		deadline, rounds, Verdict(on), Verdict(cl)), contract.ErrVerification, nil)
}

// cmp is d, or def when d is zero.
func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

package metrics

import (
	"context"
	"reflect"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// Interceptor records every activity attempt a worker runs as a step
// (hybridflow_steps_total{step=<activity type>, outcome}): the outcome is
// the result's Outcome field when it has one (activities.StepResult:
// unchanged, created, updated, removed), "completed" when it has none and
// "failed" on error. Install it on the client (temporalx.WithInterceptors):
// every worker built on that client then records. Activities stay free of
// metrics code, and nothing is recorded while workflows replay.
func (m *Metrics) Interceptor() interceptor.ClientInterceptor {
	return &stepInterceptor{m: m}
}

type stepInterceptor struct {
	interceptor.InterceptorBase
	m *Metrics
}

func (s *stepInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &stepInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, m: s.m}
}

type stepInbound struct {
	interceptor.ActivityInboundInterceptorBase
	m *Metrics
}

func (a *stepInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	outcome := OutcomeFailed
	if err == nil {
		outcome = outcomeOf(res)
	}
	a.m.ObserveStep(activity.GetInfo(ctx).ActivityType.Name, outcome, time.Since(start))
	return res, err
}

// outcomeOf reads a string-kinded Outcome field of a struct result (by
// reflection, so this package does not depend on activities).
func outcomeOf(res any) string {
	v := reflect.ValueOf(res)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return OutcomeCompleted
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return OutcomeCompleted
	}
	f := v.FieldByName("Outcome")
	if !f.IsValid() || f.Kind() != reflect.String || f.String() == "" {
		return OutcomeCompleted
	}
	return f.String()
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestVerifyScheduleFlagsRefused: flags that mean nothing together, or a
// --schedule that is neither an interval nor a cron expression, are
// refused naming the flag, before Temporal is dialled (the address below
// has nothing listening, so reaching it would fail differently).
func TestVerifyScheduleFlagsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "-f", demoInventory, "--schedule", "every day"}, `--schedule "every day" is neither an interval`},
		{[]string{"verify", "-f", demoInventory, "--schedule", "500ms"}, "the interval must be at least 1s"},
		{[]string{"verify", "-f", demoInventory, "--schedule", ""}, "--schedule: give an interval"},
		{[]string{"verify", "-f", demoInventory, "--jitter", "5m"}, "--jitter only applies with --schedule"},
		{[]string{"verify", "-f", demoInventory, "--paused"}, "--paused only applies with --schedule"},
		{[]string{"verify", "-f", demoInventory, "--yes"}, "--yes only applies with --schedule-delete"},
		{[]string{"verify", "-f", demoInventory, "--schedule", "6h", "--schedule-delete"}, "use --schedule or --schedule-delete, not both"},
		{[]string{"verify", "--schedule-delete"}, "name the inventory with -f, or the verify with --name"},
		{[]string{"verify", "-f", demoInventory, "--name", "Bad Name"}, `--name "Bad Name"`},
		{[]string{"verify", "-f", demoInventory, "--concurrency", "0"}, "--concurrency must be at least 1"},
	} {
		var out, errb bytes.Buffer
		code := run(ctx, append(c.args, "--address=127.0.0.1:1"), &out, &errb, func(string) string { return "" })
		if code == 0 || !strings.Contains(errb.String(), c.want) || strings.Contains(errb.String(), "connect to Temporal") {
			t.Errorf("%v: exit %d, stderr %q; want an error containing %q before any connection", c.args, code, errb.String(), c.want)
		}
	}
}

// TestParseVerifySpec: intervals and cron expressions as the schedule's
// spec.
func TestParseVerifySpec(t *testing.T) {
	s, err := parseVerifySpec("6h", time.Minute)
	if err != nil || len(s.Intervals) != 1 || s.Intervals[0].Every != 6*time.Hour || s.Jitter != time.Minute || len(s.CronExpressions) != 0 {
		t.Errorf("6h: %+v %v", s, err)
	}
	for _, cron := range []string{"0 * * * *", "@hourly", "30 2 * * 1-5"} {
		s, err := parseVerifySpec(cron, 0)
		if err != nil || len(s.CronExpressions) != 1 || s.CronExpressions[0] != cron || len(s.Intervals) != 0 {
			t.Errorf("%q: %+v %v", cron, s, err)
		}
	}
}

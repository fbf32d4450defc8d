// Package plan holds the pure decisions of the workflows: for setup, which
// mode a tenant uses, which keys and service principal names to write, and
// which of the documented steps (docs/microsoft-behaviour.md, "The
// documented steps") still have work to do; for the auth certificate's
// renewal, what a run does (DecideRenewal); for Lync, what each Lync step
// would change (BuildLyncPlan) and the verdicts its activities reach.
//
// Everything here is a function of its arguments. Nothing reads a clock,
// the network or the environment: the time is passed in, so the same
// inputs give the same plan in an activity, in a workflow (where the wall
// clock is forbidden) and in a replay test. Every decision comes with a
// sentence an Exchange administrator can read, because the plan is what
// operators see before they let hybridflow touch their tenant.
//
// The style follows cert-manager's trigger policies: a plan is an ordered
// chain of small functions, one per step (or, for the renewal, one per
// ground for acting), each returning its decision and its reason, rather
// than one function full of nested conditions.
//
// Types are plain data with JSON tags; they travel through Temporal
// payloads and must not depend on any SDK.
package plan

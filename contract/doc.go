// Package contract is what crosses the line between hybridflow's workflows
// and its activities: the activities' names, their inputs and results,
// the undo records that travel in results, failures and heartbeats, the
// stable error types, and the few pure helpers workflow code applies to
// them. It holds no client, no PowerShell and no Graph code, so that the
// workflows package can depend on it without pulling in any of them.
//
// The JSON field names are the wire format: recorded workflow histories
// decode into these types, so a field is renamed only with a workflow
// version change.
package contract

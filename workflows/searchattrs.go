package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Custom search attributes. Operators filter on them in the Web UI, e.g.
// `HybridflowState = "paused"` lists every tenant waiting for a person.
// The Makefile registers the same names on the dev server; a test keeps
// the two lists equal.
var (
	SATenant = temporal.NewSearchAttributeKeyKeyword("HybridflowTenant")
	SACloud  = temporal.NewSearchAttributeKeyKeyword("HybridflowCloud")
	SAStep   = temporal.NewSearchAttributeKeyKeyword("HybridflowStep")
	SAState  = temporal.NewSearchAttributeKeyKeyword("HybridflowState")
	// SADrift is a finished verify run's summary: "converged" or
	// "drifted" (DriftConverged, DriftDrifted).
	SADrift = temporal.NewSearchAttributeKeyKeyword("HybridflowDrift")
)

// SearchAttributes lists every custom attribute with its indexed type, for
// registration (dev server flags, operator API) and for `hybridflow doctor`.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SATenant.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SACloud.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAStep.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAState.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SADrift.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

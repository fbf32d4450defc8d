package contract

// Stable error types the workflows, the operator view and search filters
// rely on. Backend-specific types (an Exchange exception's short name) are
// kept as they are; these cover the decisions the product itself makes.
const (
	ErrInvalidInput       = "InvalidInput"       // bad inventory value or discovered data; a person must fix it
	ErrMissingPermission  = "MissingPermission"  // 401/403 from Graph or Exchange Online
	ErrUnsupportedVersion = "UnsupportedVersion" // Exchange builds too old for the chosen mode
	// ErrLegacyPathBlocked: the tenant cannot use the dedicated application
	// and the shared first-party path is blocked in its cloud (or legacy
	// mode was asked for there); only a server update or another setting
	// helps, so it is never retried.
	ErrLegacyPathBlocked = "LegacyPathBlocked"
	ErrThrottled         = "Throttled"          // 429 after in-client retries
	ErrTransient         = "Transient"          // 5xx, dropped connection, host restart
	ErrConflict          = "Conflict"           // an object in the way that is not ours
	ErrVerification      = "VerificationFailed" // Test-OAuthConnectivity reported an error
	// ErrGraphPageLimit: a Graph list kept paging past the client's cap
	// (a broken or hostile service); a retry would page just as long.
	ErrGraphPageLimit = "GraphPageLimit"
)

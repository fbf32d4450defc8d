package sim

// A minimal Entra token endpoint, enough for azidentity's real credentials
// (client secret, client certificate, workload identity: all the
// client-credentials grant) to obtain tokens from the simulator, and the
// bearer-token check the simulated APIs share.
//
// Tokens are opaque: simtok.<tenant>.<claims>, where claims is the
// base64url (hence dot-free) of "<expiry unix>|<audience>|<random>", so the
// tenant is everything between "simtok." and the last dot, which is all
// exo.go reads. They are not signed, because nothing in the simulator needs to trust a
// token it did not issue more than it trusts the test that runs it; what
// matters is that the tenant and the audience travel with the token, so the
// APIs can refuse a token for the wrong tenant or the wrong cloud's Graph.
// Token lifetimes use the wall clock, not World.Now: azidentity caches
// tokens by the wall clock too.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TokenLifetime is how long a simulator token is valid.
const TokenLifetime = time.Hour

const tokenPrefix = "simtok"

// Token is what a simulator bearer token says.
type Token struct {
	TenantID string
	// Audience is the resource the token is for, the scope without
	// "/.default": https://graph.microsoft.com, https://outlook.office365.us ...
	Audience string
	Expires  time.Time
}

// Errors of ParseToken and BearerToken; the APIs answer all of them with 401.
var (
	ErrNoToken      = errors.New("access token is empty")
	ErrBadToken     = errors.New("access token is malformed")
	ErrTokenExpired = errors.New("lifetime validation failed, the token is expired")
)

// IssueToken makes a token for a tenant and a scope or resource.
func IssueToken(tenantID, scope string, now time.Time) (string, Token) {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	t := Token{TenantID: tenantID, Audience: AudienceOf(scope), Expires: now.Add(TokenLifetime).Truncate(time.Second)}
	claims := strconv.FormatInt(t.Expires.Unix(), 10) + "|" + t.Audience + "|" + hex.EncodeToString(rnd[:])
	return tokenPrefix + "." + tenantID + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)), t
}

// AudienceOf turns an OAuth scope (https://graph.microsoft.com/.default)
// into the resource it names.
func AudienceOf(scope string) string {
	s := strings.TrimSuffix(strings.TrimSpace(scope), "/.default")
	return strings.ToLower(strings.TrimSuffix(s, "/"))
}

// ParseToken reads a token IssueToken made and checks its lifetime.
func ParseToken(s string, now time.Time) (Token, error) {
	if s == "" {
		return Token{}, ErrNoToken
	}
	rest, ok := strings.CutPrefix(s, tokenPrefix+".")
	i := strings.LastIndexByte(rest, '.')
	if !ok || i <= 0 {
		return Token{}, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest[i+1:])
	if err != nil {
		return Token{}, ErrBadToken
	}
	fields := strings.SplitN(string(raw), "|", 3)
	if len(fields) != 3 {
		return Token{}, ErrBadToken
	}
	exp, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return Token{}, ErrBadToken
	}
	t := Token{TenantID: rest[:i], Audience: fields[1], Expires: time.Unix(exp, 0).UTC()}
	if !now.Before(t.Expires) {
		return t, ErrTokenExpired
	}
	return t, nil
}

// BearerToken reads and checks the request's "Authorization: Bearer" token
// (format, lifetime; the audience is the caller's to compare). Graph uses
// it; exo.go currently reads only the tenant and could use it too.
func BearerToken(r *http.Request) (Token, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Token{}, ErrNoToken
	}
	return ParseToken(strings.TrimSpace(tok), time.Now())
}

// StaticCredential is an azcore.TokenCredential that mints simulator
// tokens for one tenant without a token endpoint, for tests that are not
// about authentication.
func StaticCredential(tenantID string) azcore.TokenCredential {
	return staticCredential{tenantID: tenantID}
}

type staticCredential struct{ tenantID string }

func (c staticCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("sim static credential: want exactly one scope, got %d", len(opts.Scopes))
	}
	s, t := IssueToken(c.tenantID, opts.Scopes[0], time.Now())
	return azcore.AccessToken{Token: s, ExpiresOn: t.Expires, RefreshOn: t.Expires.Add(-TokenLifetime / 2)}, nil
}

// TokenGrant records one token the endpoint issued: who asked and how they
// proved it, never the client's secret itself.
type TokenGrant struct {
	TenantID string
	ClientID string
	// Method is client_secret, client_secret_basic or client_assertion.
	Method string
	Scope  string
	At     time.Time
	// AccessToken is the bearer token issued, kept so that tests can prove
	// it appears in no log or workflow history (worker/secrets_test.go).
	AccessToken string
}

// tokenService is the Entra side of the simulator: OpenID discovery,
// instance discovery and the client-credentials token endpoint.
type tokenService struct {
	w *World
	// secrets maps client ID → secret. Nil accepts any non-empty secret
	// unless anySecret is set.
	secrets map[string]string
	// anySecret, when set, is accepted for every client ID secrets does
	// not name.
	anySecret string

	mu     sync.Mutex
	grants []TokenGrant
}

func newTokenService(w *World, secrets map[string]string) *tokenService {
	return &tokenService{w: w, secrets: secrets}
}

func (s *tokenService) Grants() []TokenGrant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenGrant(nil), s.grants...)
}

func (s *tokenService) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	base := "https://" + r.Host
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/common/discovery/instance" && r.Method == http.MethodGet:
		s.instanceDiscovery(rw, r, base)
	case len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration" && r.Method == http.MethodGet:
		s.openIDConfiguration(rw, r, base, segs[0])
	case len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" && r.Method == http.MethodPost:
		s.token(rw, r, segs[0])
	default:
		aadError(rw, http.StatusNotFound, "invalid_request", 90002, fmt.Sprintf("The endpoint %s %s does not exist in the simulator.", r.Method, r.URL.Path))
	}
}

// resolveTenant finds a tenant by ID or by any of its domains, as Entra
// accepts either in the authority URL.
func (s *tokenService) resolveTenant(ref string) (id string, ok bool) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if t := s.w.tenant(ref); t != nil {
		return t.ID, true
	}
	for _, t := range s.w.Tenants {
		if strings.EqualFold(t.InitialDomain, ref) {
			return t.ID, true
		}
		for _, d := range t.Entra.Domains {
			if strings.EqualFold(d.ID, ref) {
				return t.ID, true
			}
		}
	}
	return "", false
}

func (s *tokenService) instanceDiscovery(rw http.ResponseWriter, r *http.Request, base string) {
	host := strings.TrimPrefix(base, "https://")
	tenant := "common"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		if i := strings.Index(ae, host+"/"); i >= 0 {
			tenant, _, _ = strings.Cut(ae[i+len(host)+1:], "/")
		}
	}
	serveJSON(rw, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": base + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []any{map[string]any{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

func (s *tokenService) openIDConfiguration(rw http.ResponseWriter, _ *http.Request, base, ref string) {
	id, ok := s.resolveTenant(ref)
	if !ok {
		aadError(rw, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", ref))
		return
	}
	serveJSON(rw, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/" + ref + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/" + ref + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + ref + "/oauth2/v2.0/devicecode",
		"jwks_uri":                              base + "/" + ref + "/discovery/v2.0/keys",
		"issuer":                                base + "/" + id + "/v2.0",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   nil,
		"cloud_instance_name":                   "simulator",
	})
}

const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func (s *tokenService) token(rw http.ResponseWriter, r *http.Request, ref string) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		aadError(rw, http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded: "+err.Error())
		return
	}
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "client_credentials" {
		aadError(rw, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'; the simulator only issues app-only tokens.", gt))
		return
	}
	tenantID, ok := s.resolveTenant(ref)
	if !ok {
		aadError(rw, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", ref))
		return
	}
	fault := s.w.DecideRequest(FaultRequest{Protocol: ProtoToken, Method: r.Method, Path: "/oauth2/v2.0/token", Operation: "POST token", Tenant: tenantID})
	if fault.Kind == FaultApplyThenDrop {
		// The token is issued (and the grant recorded), the reply is lost.
		defer dropConnection(rw)
		rw = newDiscardResponse()
	}
	if !tokenFault(rw, r, fault) {
		return
	}
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	method := "client_secret"
	if u, p, basic := r.BasicAuth(); basic {
		clientID, secret, method = u, p, "client_secret_basic"
	}
	if clientID == "" {
		aadError(rw, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	switch {
	case f.Get("client_assertion") != "":
		method = "client_assertion"
		// The assertion's signature is not checked: the simulator has no
		// registry of the client's certificates. Its shape is.
		if f.Get("client_assertion_type") != jwtBearerAssertion || strings.Count(f.Get("client_assertion"), ".") != 2 {
			aadError(rw, http.StatusBadRequest, "invalid_client", 50027, "Invalid JWT token. The client assertion is not a JWT bearer assertion.")
			return
		}
	case secret == "":
		aadError(rw, http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
		return
	case s.secrets != nil || s.anySecret != "":
		want, known := s.secrets[clientID]
		if !known && s.anySecret != "" {
			want, known = s.anySecret, true
		}
		if !known {
			aadError(rw, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, tenantID))
			return
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
			aadError(rw, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	}
	// MSAL adds the OpenID Connect scopes to every request; Entra ignores
	// them for app-only tokens. What remains must be one <resource>/.default.
	var resource []string
	for _, sc := range strings.Fields(f.Get("scope")) {
		switch sc {
		case "openid", "profile", "offline_access", "email":
		default:
			resource = append(resource, sc)
		}
	}
	if len(resource) != 1 || !strings.HasSuffix(resource[0], "/.default") {
		aadError(rw, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", f.Get("scope")))
		return
	}
	scope := resource[0]
	now := time.Now()
	tok, t := IssueToken(tenantID, scope, now)
	s.mu.Lock()
	s.grants = append(s.grants, TokenGrant{TenantID: tenantID, ClientID: clientID, Method: method, Scope: scope, At: now, AccessToken: tok})
	s.mu.Unlock()
	secs := int(time.Until(t.Expires).Seconds())
	serveJSON(rw, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// aadError answers in the shape of Entra's token endpoint errors, which
// azidentity surfaces in AuthenticationFailedError.
func aadError(rw http.ResponseWriter, status int, code string, aadsts int, description string) {
	now := time.Now().UTC()
	trace := simRequestID()
	serveJSON(rw, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, description, trace, trace, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":    []int{aadsts},
		"timestamp":      now.Format("2006-01-02 15:04:05Z"),
		"trace_id":       trace,
		"correlation_id": trace,
	})
}

// simRequestID is a random GUID for request-id headers and error bodies.
func simRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func serveJSON(rw http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, "sim: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(body)))
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

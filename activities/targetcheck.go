package activities

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hybridflow/hybridflow/internal/cloud"
	"github.com/hybridflow/hybridflow/internal/config"
	"github.com/hybridflow/hybridflow/internal/exchange"
	"github.com/hybridflow/hybridflow/internal/graph"
)

// An activity's Target arrives in its input, written by whoever started
// the workflow. The worker does not take it on trust: before a client is
// built for it (a token requested, a cmdlet sent), the target is held
// against what the worker's own configuration allows, here, in one place.
// Every refusal is a non-retryable InvalidInput error naming the field:
// the Graph and Exchange Online client helpers of the activities make the
// error of a refused client one, and a site's refused runner answers every
// call with one.

// TargetRules is what a worker's configuration lets a target name.
type TargetRules struct {
	// Credentials are the worker's credentials by name. Nil: not checked
	// (a simulated world that mints its own tokens and was given none).
	Credentials map[string]config.Credential
	// ExchangeOnlineHosts are the Exchange Online hosts a target may name
	// besides those of the clouds the product knows, lower case.
	ExchangeOnlineHosts []string
}

// RulesFromConfig are the target rules of a worker configured by cfg.
// A worker that signs in for real checks credentials even when it has
// none (then every target is refused: it could not sign in anyway).
func RulesFromConfig(cfg *config.WorkerConfig) *TargetRules {
	r := &TargetRules{ExchangeOnlineHosts: cfg.ExchangeOnlineHosts}
	if cfg.Simulate == nil || len(cfg.Credentials) > 0 {
		r.Credentials = cfg.Credentials
		if r.Credentials == nil {
			r.Credentials = map[string]config.Credential{}
		}
	}
	return r
}

var tenantIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// defaultCredential is the credential of a target that names none.
const defaultCredential = "default"

// check holds what every side checks: the tenant ID, the cloud and the
// Exchange Online host. The host is where a tenant's Exchange Online
// requests and tokens go, so it must be one of the known clouds' hosts
// or one the worker's configuration lists.
func (r *TargetRules) check(t Target) error {
	if !tenantIDRE.MatchString(t.TenantID) {
		return refuse("target.tenant_id %q is not a tenant ID (a GUID)", clip(t.TenantID))
	}
	if _, err := cloud.Lookup(t.Cloud); err != nil {
		return refuse("target.cloud: %v", err)
	}
	if h := strings.ToLower(strings.TrimSpace(t.ExchangeOnlineHost)); h != "" {
		known := knownExchangeOnlineHosts()
		var allowed []string
		if r != nil {
			allowed = r.ExchangeOnlineHosts
		}
		if !slices.Contains(known, h) && !slices.Contains(allowed, h) {
			return refuse("target.exchange_online_host %q is neither a known cloud's Exchange Online host (%s) nor listed in this worker's exchange_online_hosts",
				clip(t.ExchangeOnlineHost), strings.Join(known, ", "))
		}
	}
	return nil
}

// checkCloud adds what the cloud side checks: the credential must be one
// of the worker's, and one allowed for the target's cloud.
func (r *TargetRules) checkCloud(t Target) error {
	if err := r.check(t); err != nil {
		return err
	}
	if r == nil || r.Credentials == nil {
		return nil
	}
	name := t.Credential
	if name == "" {
		name = defaultCredential
	}
	c, ok := r.Credentials[name]
	if !ok {
		names := make([]string, 0, len(r.Credentials))
		for n := range r.Credentials {
			names = append(names, n)
		}
		slices.Sort(names)
		have := "none"
		if len(names) > 0 {
			have = strings.Join(names, ", ")
		}
		return refuse("target.credential %q is not one of this worker's credentials (%s)", clip(name), have)
	}
	if len(c.Clouds) > 0 {
		p, _ := cloud.Lookup(t.Cloud) // checked above
		if !slices.Contains(c.Clouds, string(p.Name)) {
			return refuse("target.cloud %s is not a cloud credential %q signs in to (credentials.%s.clouds: %s)",
				p.Name, name, name, strings.Join(c.Clouds, ", "))
		}
	}
	return nil
}

// checkSite adds what a site's worker checks: the target's site must be
// the site of the role the activity was registered for, so that a task on
// one site's queue never drives another site's Exchange or Lync.
func (r *TargetRules) checkSite(t Target, field, got string, role config.Role) error {
	if err := r.check(t); err != nil {
		return err
	}
	if got != role.Site {
		return refuse("target.%s %q is not this worker's site: the activity came from the task queue of role %s", field, clip(got), role)
	}
	return nil
}

// knownExchangeOnlineHosts are the Exchange Online hosts of every cloud
// profile, sorted.
func knownExchangeOnlineHosts() []string {
	var out []string
	for _, n := range cloud.Names() {
		if h := cloud.MustLookup(n).ExchangeOnlineHost; !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// refuse is a refusal; the activities' client helpers make it a
// non-retryable InvalidInput error (refusedRunner does for the sites).
func refuse(format string, args ...any) error {
	return fmt.Errorf("refused before any request: "+format, args...)
}

// clip shortens a value taken from a payload before it goes into a
// message; clipPath, a path, which may be longer.
func clip(s string) string     { return clipAt(s, 80) }
func clipPath(s string) string { return clipAt(s, 512) }

func clipAt(s string, most int) string {
	if len(s) <= most {
		return s
	}
	s = s[:most]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1] // not in the middle of a character
	}
	return s + "…"
}

// CloudClients hands out a tenant's Graph client and Exchange Online
// runner (the backend, on the cloud worker).
type CloudClients interface {
	GraphClients
	OnlineClients
}

// CheckedClients are c for targets the rules accept; another target gets
// an error and no client, so no token is requested for it.
func CheckedClients(c CloudClients, rules *TargetRules) CloudClients {
	return checkedClients{c: c, rules: rules}
}

type checkedClients struct {
	c     CloudClients
	rules *TargetRules
}

func (k checkedClients) Graph(t Target) (*graph.Client, error) {
	if err := k.rules.checkCloud(t); err != nil {
		return nil, err
	}
	return k.c.Graph(t)
}

func (k checkedClients) ExchangeOnline(t Target) (exchange.Runner, error) {
	if err := k.rules.checkCloud(t); err != nil {
		return nil, err
	}
	return k.c.ExchangeOnline(t)
}

// OnPremHostsFor are h for the targets of role's site that the rules
// accept; for another target every cmdlet call fails with the refusal and
// no host is started.
func OnPremHostsFor(h OnPremHosts, role config.Role, rules *TargetRules) OnPremHosts {
	return onPremAt{h: h, role: role, rules: rules}
}

type onPremAt struct {
	h     OnPremHosts
	role  config.Role
	rules *TargetRules
}

func (o onPremAt) OnPrem(t Target) exchange.Runner {
	if err := o.rules.checkSite(t, "site", t.Site, o.role); err != nil {
		return refusedRunner{nonRetryable(ErrInvalidInput, "%v", err)}
	}
	return o.h.OnPrem(t)
}

// LyncHostsFor is OnPremHostsFor for a Lync role and the target's
// lync_site.
func LyncHostsFor(h LyncHosts, role config.Role, rules *TargetRules) LyncHosts {
	return lyncAt{h: h, role: role, rules: rules}
}

type lyncAt struct {
	h     LyncHosts
	role  config.Role
	rules *TargetRules
}

func (l lyncAt) Lync(t Target) exchange.Runner {
	if err := l.rules.checkSite(t, "lync_site", t.LyncSite, l.role); err != nil {
		return refusedRunner{nonRetryable(ErrInvalidInput, "%v", err)}
	}
	return l.h.Lync(t)
}

// refusedRunner answers every call with the refusal of its target.
type refusedRunner struct{ err error }

func (r refusedRunner) Run(context.Context, exchange.Command) ([]exchange.Row, error) {
	return nil, r.err
}

func (r refusedRunner) RunBatch(context.Context, []exchange.Command) ([]exchange.Result, error) {
	return nil, r.err
}

// String makes the refusal readable where a runner is logged.
func (r refusedRunner) String() string { return fmt.Sprintf("refused: %v", r.err) }

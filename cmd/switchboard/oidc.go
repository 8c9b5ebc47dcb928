package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/oidcauth"
)

// OIDCConfig is the sign-in with a company account (OpenID Connect): off
// unless Issuer is set.
type OIDCConfig struct {
	Issuer        string
	ClientID      string
	ClientSecret  string
	RedirectURL   string
	Scopes        []string
	RoleClaim     string
	Roles         oidcauth.RoleMap
	IdentityClaim string
}

// On reports whether the sign-in with a company account is configured.
func (c OIDCConfig) On() bool { return c.Issuer != "" }

// oidcFlags registers the --oidc-* flags; the function it returns checks
// them once parsed.
func oidcFlags(fs *flag.FlagSet, cfg *OIDCConfig, env func(name, def string) string) func() error {
	fs.StringVar(&cfg.Issuer, "oidc-issuer", env("SWITCHBOARD_OIDC_ISSUER", ""), "the OpenID Connect provider's issuer URL: turns on the console's sign-in with a company account (env SWITCHBOARD_OIDC_ISSUER)")
	fs.StringVar(&cfg.ClientID, "oidc-client-id", env("SWITCHBOARD_OIDC_CLIENT_ID", ""), "the switchboard's client id at the provider (env SWITCHBOARD_OIDC_CLIENT_ID)")
	fs.StringVar(&cfg.ClientSecret, "oidc-client-secret", env("SWITCHBOARD_OIDC_CLIENT_SECRET", ""), "its client secret; prefer the environment, which ps does not show (env SWITCHBOARD_OIDC_CLIENT_SECRET)")
	fs.StringVar(&cfg.RedirectURL, "oidc-redirect-url", env("SWITCHBOARD_OIDC_REDIRECT_URL", ""), "the callback URL registered at the provider, https://<host>/auth/callback (env SWITCHBOARD_OIDC_REDIRECT_URL; default: from each request's host)")
	scopes := fs.String("oidc-scopes", env("SWITCHBOARD_OIDC_SCOPES", "profile,email"), "comma-separated scopes asked for besides openid, e.g. profile,email,groups (env SWITCHBOARD_OIDC_SCOPES)")
	fs.StringVar(&cfg.RoleClaim, "oidc-role-claim", env("SWITCHBOARD_OIDC_ROLE_CLAIM", oidcauth.DefaultRoleClaim), "the ID token claim that gives the role, e.g. groups or realm_access.roles (env SWITCHBOARD_OIDC_ROLE_CLAIM)")
	roles := fs.String("oidc-roles", env("SWITCHBOARD_OIDC_ROLES", ""), "role=value pairs mapping the role claim's values to roles, e.g. supervisor=sb-supervisors,agent=sb-agents (env SWITCHBOARD_OIDC_ROLES; default: the claim's value is agent or supervisor)")
	fs.StringVar(&cfg.IdentityClaim, "oidc-identity-claim", env("SWITCHBOARD_OIDC_IDENTITY_CLAIM", oidcauth.DefaultIdentityClaim), "the ID token claim whose value is the user's communicationUserId, e.g. sub (env SWITCHBOARD_OIDC_IDENTITY_CLAIM)")
	return func() error {
		cfg.Scopes = nil
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				cfg.Scopes = append(cfg.Scopes, s)
			}
		}
		if cfg.Scopes == nil {
			cfg.Scopes = []string{}
		}
		var err error
		if cfg.Roles, err = oidcauth.ParseRoleMap(*roles); err != nil {
			return fmt.Errorf("--oidc-roles: %w", err)
		}
		if !cfg.On() {
			if cfg.ClientID != "" || cfg.ClientSecret != "" || cfg.RedirectURL != "" || len(cfg.Roles) > 0 {
				return errors.New("the --oidc-* flags need --oidc-issuer (SWITCHBOARD_OIDC_ISSUER)")
			}
			return nil
		}
		if cfg.ClientID == "" {
			return errors.New("--oidc-issuer needs --oidc-client-id (SWITCHBOARD_OIDC_CLIENT_ID)")
		}
		return nil
	}
}

// newSignIn is the sign-in with a company account, or nil when it is off.
func (m *Main) newSignIn() (api.SignIn, error) {
	c := m.Config.OIDC
	if !c.On() {
		return nil, nil
	}
	var stateKey []byte
	if m.Config.Cluster.On() {
		// Every node derives the same key from the admin key they share, so
		// a sign-in begun on one node finishes on any other.
		stateKey = adminKeyDerived(m.Config.AdminKey, "switchboard sign-in state key v1")
	}
	h, err := oidcauth.New(oidcauth.Config{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
		Scopes: c.Scopes, RoleClaim: c.RoleClaim, Roles: c.Roles, IdentityClaim: c.IdentityClaim,
		StateKey: stateKey, Logger: m.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("the sign-in with a company account: %w", err)
	}
	m.Logger.Info("the console offers the sign-in with a company account (OIDC)", "issuer", c.Issuer,
		"role_claim", h.RoleClaim(), "identity_claim", h.IdentityClaim())
	return h, nil
}

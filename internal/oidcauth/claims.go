package oidcauth

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/calls"
)

// Claim names used when Config leaves them empty.
const (
	DefaultRoleClaim     = "switchboard_role"
	DefaultIdentityClaim = "preferred_username"
	nameClaim            = "name"
)

// maxDisplayName is the longest display name a token takes, in bytes.
const maxDisplayName = 256

// RoleMap maps a role claim's values to roles: a user whose claim holds
// any of a role's values has that role. Empty: the claim's value is the
// role's own name (agent or supervisor).
type RoleMap map[calls.Role][]string

// ParseRoleMap reads "supervisor=sb-supervisors,agent=sb-agents": pairs of
// a role (agent or supervisor) and a claim value, comma-separated; a role
// may appear more than once. Empty text is an empty map.
func ParseRoleMap(text string) (RoleMap, error) {
	m := RoleMap{}
	for _, pair := range strings.Split(text, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		role, value, ok := strings.Cut(pair, "=")
		role, value = strings.TrimSpace(role), strings.TrimSpace(value)
		if !ok || value == "" {
			return nil, fmt.Errorf("%q is not role=value", pair)
		}
		r := calls.Role(role)
		if r != calls.RoleAgent && r != calls.RoleSupervisor {
			return nil, fmt.Errorf("%q: the role must be agent or supervisor", pair)
		}
		m[r] = append(m[r], value)
	}
	return m, nil
}

// role is the role the claim's values give: supervisor when any maps to
// supervisor, else agent when any maps to agent; ok is false when none
// maps.
func (m RoleMap) role(values []string) (role calls.Role, ok bool) {
	for _, r := range []calls.Role{calls.RoleSupervisor, calls.RoleAgent} {
		want := m[r]
		if len(m) == 0 {
			want = []string{string(r)}
		}
		for _, v := range values {
			if slices.Contains(want, v) {
				return r, true
			}
		}
	}
	return "", false
}

// claimMapping turns an ID token's claims into a principal.
type claimMapping struct {
	roleClaim     string
	roles         RoleMap
	identityClaim string
}

// principal maps the claims: the identity claim's string is the
// communicationUserId, the name claim the display name (the identity when
// absent), and the role claim's value or values the role.
func (cm claimMapping) principal(claims map[string]any) (calls.Principal, error) {
	id, _ := lookup(claims, cm.identityClaim).(string)
	if id == "" {
		return calls.Principal{}, calls.Errorf(calls.CodeForbidden,
			"your account has no %s claim, which names you on the switchboard: ask your administrator", cm.identityClaim)
	}
	if v, ok := claims["email_verified"].(bool); ok && !v && cm.identityClaim == "email" {
		return calls.Principal{}, calls.Errorf(calls.CodeForbidden,
			"your account's email address is not verified at the provider, and it names you on the switchboard: verify it, or ask your administrator")
	}
	ident := calls.CommunicationUser(id)
	if err := ident.Validate(); err != nil {
		return calls.Principal{}, &calls.Error{Code: calls.CodeForbidden, Op: "sign in", Err: err,
			Message: fmt.Sprintf("your account's %s claim is not a usable switchboard identity: ask your administrator", cm.identityClaim)}
	}
	values := stringValues(lookup(claims, cm.roleClaim))
	role, ok := cm.roles.role(values)
	if !ok {
		return calls.Principal{}, calls.Errorf(calls.CodeForbidden,
			"your account has no switchboard role (its %s claim maps to neither agent nor supervisor): ask your administrator", cm.roleClaim)
	}
	name, _ := claims[nameClaim].(string)
	if name = strings.TrimSpace(name); name == "" {
		name = id
	}
	return calls.Principal{Identifier: ident, DisplayName: truncate(name, maxDisplayName), Role: role}, nil
}

// lookup finds a claim by name, or, when there is no claim of that name
// and it has dots, by its path through nested objects (Keycloak's
// realm_access.roles).
func lookup(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var v any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// stringValues is a claim's value as strings: a string, or the strings of
// an array.
func stringValues(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// truncate cuts s to at most n bytes at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

package sip

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Trunk is a carrier's or a PBX's connection to the switchboard:
// --sip-trunk NAME=sip:USER:PASSWORD@HOST:PORT. Calls from its host are
// trusted; calls from elsewhere may authenticate with its user and
// password (digest).
type Trunk struct {
	Name     string
	User     string
	Password string
	Host     string
	Port     int
	// TCP: calls out go over TCP (;transport=tcp on the URI), else UDP.
	TCP bool
	// Register is the expiry the switchboard asks for when it registers
	// with the trunk (;register[=SECONDS] on the URI, DefaultRegister
	// without a value); 0 is no registration.
	Register time.Duration
	// Prefixes are the E.164 prefixes ("+44") of the numbers called out
	// through this trunk (;prefix=+44,+33 on the URI, repeatable): a call
	// goes through the trunk with the longest prefix of its number, else
	// the first trunk without prefixes.
	Prefixes []string
}

// DefaultRegister is the expiry of ;register without a value.
const DefaultRegister = time.Hour

// String is the trunk as the flag writes it, without its password.
func (t Trunk) String() string {
	return fmt.Sprintf("%s=sip:%s@%s", t.Name, t.User, net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
}

// ParseTrunk reads NAME=sip:USER:PASSWORD@HOST:PORT; USER:PASSWORD@ and
// :PORT (5060) may be left out, ;transport=tcp sends calls out over TCP,
// ;register[=SECONDS] registers with the trunk, and ;prefix=+NN (comma-
// separated or repeated) names the numbers it takes calls out to.
func ParseTrunk(s string) (Trunk, error) {
	name, uri, ok := strings.Cut(s, "=")
	if !ok || name == "" || strings.ContainsAny(name, " \t/") {
		return Trunk{}, fmt.Errorf("sip trunk %q: want NAME=sip:USER:PASSWORD@HOST:PORT", s)
	}
	uri, prefixes := cutPrefixes(uri)
	for _, p := range prefixes {
		if !validPrefix(p) {
			return Trunk{}, fmt.Errorf("sip trunk %s: prefix %q: want + and 1 to 15 digits", name, p)
		}
	}
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" {
		return Trunk{}, fmt.Errorf("sip trunk %s: %q is not a sip: URI with a host (sip:USER:PASSWORD@HOST:PORT)", name, uri)
	}
	t := Trunk{Name: name, User: u.User, Password: u.Password, Host: u.Host, Port: u.Port, Prefixes: prefixes}
	if u.UriParams != nil {
		if tr, ok := u.UriParams.Get("transport"); ok {
			switch strings.ToLower(tr) {
			case "tcp":
				t.TCP = true
			case "udp":
			default:
				return Trunk{}, fmt.Errorf("sip trunk %s: transport %q: udp or tcp", name, tr)
			}
		}
		if v, ok := u.UriParams.Get("register"); ok {
			t.Register = DefaultRegister
			if v != "" {
				sec, err := strconv.Atoi(v)
				if err != nil || sec <= 0 {
					return Trunk{}, fmt.Errorf("sip trunk %s: register=%q: want a number of seconds over 0", name, v)
				}
				t.Register = time.Duration(sec) * time.Second
			}
		}
	}
	if t.Port == 0 {
		t.Port = 5060
	}
	if t.Port < 0 || t.Port > 65535 {
		return Trunk{}, fmt.Errorf("sip trunk %s: port %d out of range", name, t.Port)
	}
	if (t.User == "") != (t.Password == "") {
		return Trunk{}, fmt.Errorf("sip trunk %s: give both a user and a password, or neither", name)
	}
	return t, nil
}

// cutPrefixes takes the ;prefix= parameters out of a trunk's URI (sipgo
// keeps only the last of a repeated parameter), splitting their values at
// commas. Parameters follow the host, after any user part's @.
func cutPrefixes(uri string) (string, []string) {
	at := strings.LastIndex(uri, "@") + 1
	parts := strings.Split(uri[at:], ";")
	kept := parts[:1]
	var prefixes []string
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(k, "prefix") {
			kept = append(kept, p)
			continue
		}
		prefixes = append(prefixes, strings.Split(v, ",")...)
	}
	return uri[:at] + strings.Join(kept, ";"), prefixes
}

// validPrefix: + and 1 to 15 digits.
func validPrefix(p string) bool {
	digits, ok := strings.CutPrefix(p, "+")
	if !ok || len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// trunkFor chooses the trunk a call out to number (E.164) goes through:
// the one with the longest prefix of number (the first such trunk on a
// tie), else the first trunk without prefixes; false when none fits.
func trunkFor(trunks []Trunk, number string) (Trunk, bool) {
	best, bestLen := -1, 0
	for i, t := range trunks {
		for _, p := range t.Prefixes {
			if len(p) > bestLen && strings.HasPrefix(number, p) {
				best, bestLen = i, len(p)
			}
		}
	}
	if best >= 0 {
		return trunks[best], true
	}
	for _, t := range trunks {
		if len(t.Prefixes) == 0 {
			return t, true
		}
	}
	return Trunk{}, false
}

// gate decides who may call in: the trunks' addresses, and whoever answers
// a digest challenge with a trunk's user and password.
type gate struct {
	realm   string
	trusted map[netip.Addr]string // address → trunk name
	trunks  []Trunk
	secret  [32]byte
	now     func() time.Time
}

// nonceLifetime is how long a digest challenge may be answered.
const nonceLifetime = 5 * time.Minute

func newGate(ctx context.Context, realm string, trunks []Trunk, resolver *net.Resolver) (*gate, error) {
	g := &gate{realm: realm, trusted: map[netip.Addr]string{}, trunks: trunks, now: time.Now}
	if _, err := rand.Read(g.secret[:]); err != nil {
		return nil, fmt.Errorf("sip: nonce secret: %w", err)
	}
	for _, t := range trunks {
		if a, err := netip.ParseAddr(t.Host); err == nil {
			g.trusted[a.Unmap()] = t.Name
			continue
		}
		addrs, err := resolver.LookupNetIP(ctx, "ip", t.Host)
		if err != nil {
			return nil, fmt.Errorf("sip trunk %s: resolving %s: %w", t.Name, t.Host, err)
		}
		for _, a := range addrs {
			g.trusted[a.Unmap()] = t.Name
		}
	}
	return g, nil
}

// verdict is what the gate says of a request.
type verdict int

const (
	allowed   verdict = iota
	challenge         // answer 401 with a fresh challenge
	forbidden         // answer 403
)

// check says whether req may start a call: from a trunk's address, or
// with an Authorization that answers one of our challenges with a trunk's
// credentials. It answers the trunk's name when allowed.
func (g *gate) check(req *sip.Request) (verdict, string) {
	if name, ok := g.trunkOf(req); ok {
		return allowed, name
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		if g.canChallenge() {
			return challenge, ""
		}
		return forbidden, ""
	}
	creds, err := digest.ParseCredentials(h.Value())
	if err != nil || creds.Realm != g.realm || !g.validNonce(creds.Nonce) {
		if g.canChallenge() && err == nil && creds.Realm == g.realm {
			return challenge, "" // a stale nonce: challenge again
		}
		return forbidden, ""
	}
	for _, t := range g.trunks {
		if t.User == "" || t.User != creds.Username {
			continue
		}
		chal := &digest.Challenge{Realm: g.realm, Nonce: creds.Nonce, Opaque: creds.Opaque, Algorithm: "MD5"}
		if creds.QOP != "" {
			chal.QOP = []string{creds.QOP}
		}
		want, err := digest.Digest(chal, digest.Options{
			Method: string(req.Method), URI: creds.URI, Username: t.User, Password: t.Password,
			Cnonce: creds.Cnonce, Count: creds.Nc,
		})
		if err == nil && subtle.ConstantTimeCompare([]byte(want.Response), []byte(creds.Response)) == 1 {
			return allowed, t.Name
		}
	}
	return forbidden, ""
}

// sourceAddr is the address a request came from.
func sourceAddr(req *sip.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// trunkOf answers the name of the trunk whose address req came from.
func (g *gate) trunkOf(req *sip.Request) (string, bool) {
	a, ok := sourceAddr(req)
	if !ok {
		return "", false
	}
	name, ok := g.trusted[a]
	return name, ok
}

// canChallenge reports whether some trunk has credentials to answer with.
func (g *gate) canChallenge() bool {
	for _, t := range g.trunks {
		if t.User != "" {
			return true
		}
	}
	return false
}

// challengeHeader is a fresh WWW-Authenticate.
func (g *gate) challengeHeader() sip.Header {
	chal := digest.Challenge{Realm: g.realm, Nonce: g.nonce(g.now()), Algorithm: "MD5", QOP: []string{"auth"}}
	return sip.NewHeader("WWW-Authenticate", chal.String())
}

// nonce is the time it was made and a MAC of it, so that any nonce we
// gave can be checked without keeping it.
func (g *gate) nonce(t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 16)
	mac := hmac.New(sha256.New, g.secret[:])
	mac.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(mac.Sum(nil)[:16])
}

func (g *gate) validNonce(n string) bool {
	ts, _, ok := strings.Cut(n, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false
	}
	made := time.Unix(sec, 0)
	if age := g.now().Sub(made); age < 0 || age > nonceLifetime {
		return false
	}
	return hmac.Equal([]byte(g.nonce(made)), []byte(n))
}

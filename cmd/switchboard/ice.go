package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/turnserver"
)

// ICEConfig is what clients' WebRTC agents are told to use besides the
// server's own candidates (GET /api/media/ice-servers): the embedded TURN
// relay and external servers.
type ICEConfig struct {
	// TURNAddr, when set, runs the embedded TURN relay there (UDP and TCP).
	TURNAddr string
	// TURNRelayPortMin and TURNRelayPortMax bound its relayed ports.
	TURNRelayPortMin, TURNRelayPortMax uint16
	TURNRealm                          string
	// CredentialTTL is how long minted TURN credentials are valid.
	CredentialTTL time.Duration
	// Servers are the --ice-servers.
	Servers []ExternalICEServer
}

// ExternalICEServer is one --ice-servers entry: STUN or TURN URLs with
// static credentials, or with the shared secret of a TURN server that
// takes TURN REST credentials (coturn's use-auth-secret).
type ExternalICEServer struct {
	URLs                 []string
	Username, Credential string
	Secret               string
}

// iceFlags registers the ICE flags; finish parses what flag cannot.
func iceFlags(fs *flag.FlagSet, cfg *ICEConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.TURNAddr, "turn-addr", env("SWITCHBOARD_TURN_ADDR", ""), "run the embedded TURN relay on this address, UDP and TCP, as 0.0.0.0:3478; empty is off (env SWITCHBOARD_TURN_ADDR)")
	relayPorts := fs.String("turn-relay-ports", env("SWITCHBOARD_TURN_RELAY_PORTS", ""), "the UDP port range of the embedded TURN relay's relayed addresses, as 49160-49199; empty is any (env SWITCHBOARD_TURN_RELAY_PORTS)")
	fs.StringVar(&cfg.TURNRealm, "turn-realm", env("SWITCHBOARD_TURN_REALM", "switchboard"), "the embedded TURN relay's realm (env SWITCHBOARD_TURN_REALM)")
	ttl := fs.String("turn-ttl", env("SWITCHBOARD_TURN_TTL", turnserver.DefaultTTL.String()), "how long the TURN credentials GET /api/media/ice-servers mints are valid (env SWITCHBOARD_TURN_TTL)")
	var servers []string
	if v := env("SWITCHBOARD_ICE_SERVERS", ""); v != "" {
		servers = append(servers, v)
	}
	fromEnv := len(servers) > 0
	fs.Func("ice-servers", "external STUN/TURN servers for clients, repeatable, entries split by ';': URLs and options split by ',', as turn:turn.example.com:3478?transport=udp,turn:turn.example.com:3478?transport=tcp,secret=S (coturn use-auth-secret) or ...,username=U,credential=P (env SWITCHBOARD_ICE_SERVERS)", func(v string) error {
		if fromEnv { // a flag replaces the environment's list
			servers, fromEnv = nil, false
		}
		servers = append(servers, v)
		return nil
	})
	return func() error {
		var err error
		if cfg.CredentialTTL, err = time.ParseDuration(*ttl); err != nil || cfg.CredentialTTL <= 0 {
			return fmt.Errorf("--turn-ttl %q is not a positive duration", *ttl)
		}
		if *relayPorts != "" {
			lo, hi, ok := strings.Cut(*relayPorts, "-")
			a, errA := strconv.ParseUint(lo, 10, 16)
			b, errB := strconv.ParseUint(hi, 10, 16)
			if !ok || errA != nil || errB != nil || a == 0 || a > b {
				return fmt.Errorf("--turn-relay-ports %q is not a range like 49160-49199", *relayPorts)
			}
			cfg.TURNRelayPortMin, cfg.TURNRelayPortMax = uint16(a), uint16(b)
		}
		if cfg.TURNAddr != "" {
			if _, _, err := net.SplitHostPort(cfg.TURNAddr); err != nil {
				return fmt.Errorf("--turn-addr %q is not HOST:PORT, as 0.0.0.0:3478", cfg.TURNAddr)
			}
		}
		for _, v := range servers {
			parsed, err := parseICEServers(v)
			if err != nil {
				return err
			}
			cfg.Servers = append(cfg.Servers, parsed...)
		}
		return nil
	}
}

// parseICEServers reads one --ice-servers value: entries split by ';',
// each a list split by ',' of URLs (stun:, turn:, turns:) and options
// username=, credential= (static credentials) or secret= (TURN REST
// credentials minted for each client).
func parseICEServers(v string) ([]ExternalICEServer, error) {
	var out []ExternalICEServer
	for entry := range strings.SplitSeq(v, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var s ExternalICEServer
		turn := false
		for field := range strings.SplitSeq(entry, ",") {
			field = strings.TrimSpace(field)
			key, val, _ := strings.Cut(field, "=")
			switch {
			case field == "":
			case key == "username":
				s.Username = val
			case key == "credential":
				s.Credential = val
			case key == "secret":
				s.Secret = val
			default:
				u, err := stun.ParseURI(field)
				if err != nil {
					return nil, fmt.Errorf("--ice-servers %q: %q is not a stun:, turn: or turns: URL or username=, credential=, secret=: %w", entry, field, err)
				}
				turn = turn || u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS
				s.URLs = append(s.URLs, field)
			}
		}
		switch {
		case len(s.URLs) == 0:
			return nil, fmt.Errorf("--ice-servers %q: no URL", entry)
		case s.Secret != "" && (s.Username != "" || s.Credential != ""):
			return nil, fmt.Errorf("--ice-servers %q: secret= or username= and credential=, not both", entry)
		case (s.Username == "") != (s.Credential == ""):
			return nil, fmt.Errorf("--ice-servers %q: username= needs credential= and the other way round", entry)
		case turn && s.Secret == "" && s.Username == "":
			return nil, fmt.Errorf("--ice-servers %q: a TURN server needs secret= or username= and credential=", entry)
		}
		out = append(out, s)
	}
	return out, nil
}

// iceDirectory answers GET /api/media/ice-servers: the embedded relay's
// URLs with credentials minted for the caller, then the external servers.
type iceDirectory struct {
	turn *turnserver.Server // nil: no embedded relay
	// publicHost is the address clients reach the relay at when it is
	// known (--public-ip, or --turn-addr's own non-loopback address);
	// empty: the name the client reached the API by.
	publicHost string
	ttl        time.Duration
	external   []ExternalICEServer
}

// newICEDirectory picks the relay's public host: the first public IP, or
// the relay's own address when it listens on one. A loopback address is
// none (compose's default public IP, 127.0.0.1): the name a client used
// to reach the API is then the better guess.
func newICEDirectory(turn *turnserver.Server, turnAddr string, publicIPs []string, ttl time.Duration, external []ExternalICEServer) *iceDirectory {
	d := &iceDirectory{turn: turn, ttl: ttl, external: external}
	candidates := publicIPs
	if host, _, err := net.SplitHostPort(turnAddr); err == nil {
		candidates = append(slices.Clip(candidates), host)
	}
	for _, c := range candidates {
		if ip := net.ParseIP(c); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
			d.publicHost = c
			break
		}
	}
	return d
}

func (d *iceDirectory) ICEServers(_ context.Context, rawID, host string) ([]api.ICEServer, error) {
	var list []api.ICEServer
	if d.turn != nil {
		if d.publicHost != "" {
			host = d.publicHost
		}
		hp := net.JoinHostPort(host, strconv.Itoa(d.turn.Port()))
		user, pass, err := d.turn.Credentials(rawID)
		if err != nil {
			return nil, err
		}
		list = append(list, api.ICEServer{
			URLs:     []string{"stun:" + hp, "turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"},
			Username: user, Credential: pass,
		})
	}
	for _, s := range d.external {
		e := api.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
		if s.Secret != "" {
			var err error
			if e.Username, e.Credential, err = turnserver.Credentials(s.Secret, rawID, d.ttl); err != nil {
				return nil, err
			}
		}
		list = append(list, e)
	}
	return list, nil
}

// turnSecret derives the embedded relay's credential secret from the admin
// key: credentials stay valid across a restart with the same key.
func turnSecret(adminKey string) string {
	return hex.EncodeToString(adminKeyDerived(adminKey, "switchboard TURN credentials"))
}

// mediaPeers is where the embedded relay may send: the media plane's own
// addresses (the host's and the public ones) on its UDP ports (the shared
// ports, or the --udp-ports range; any port when legs take any). The
// relay's only legitimate peer is this switchboard's media; a token holder
// must not reach other hosts or the host's other services through it.
func mediaPeers(cfg MediaConfig, log *slog.Logger) func(netip.AddrPort) bool {
	ips := map[netip.Addr]bool{}
	for _, p := range cfg.PublicIPs {
		if ip, err := netip.ParseAddr(p); err == nil {
			ips[ip.Unmap()] = true
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Warn("TURN relay: reading the host's addresses; it relays to the public addresses alone", "err", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ips[ip.Unmap()] = true
			}
		}
	}
	lo, hi := uint16(1), uint16(65535)
	switch {
	case cfg.SharedPort != 0:
		lo, hi = cfg.SharedPort, cfg.SharedPort+uint16(max(cfg.SharedPorts, 1)-1)
	case cfg.PortMin != 0 || cfg.PortMax != 0:
		lo, hi = max(cfg.PortMin, 1), cfg.PortMax
		if hi == 0 {
			hi = 65535
		}
	}
	return func(p netip.AddrPort) bool {
		// Port 0: a permission, which names no port.
		return ips[p.Addr().Unmap()] && (p.Port() == 0 || (p.Port() >= lo && p.Port() <= hi))
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/sip"
)

// SIPConfig is the phone network's part of serve's configuration.
type SIPConfig struct {
	// Addr is where SIP listens, UDP and TCP; empty is off.
	Addr   string
	Trunks []sip.Trunk
	// RTPPorts is the UDP port range of the calls' RTP legs.
	RTPPorts string
	// SilenceTimeout ends a phone call whose far end sends nothing for
	// this long (410); negative: never.
	SilenceTimeout time.Duration
	// MutedPrompt is a WAV file a phone muted by others hears in place of
	// the built-in "You are muted. To unmute, press star 6."; empty is the
	// built-in one.
	MutedPrompt string
}

// trunkFlags collects repeated --sip-trunk flags.
type trunkFlags []string

func (t *trunkFlags) String() string { return strings.Join(*t, ",") }

func (t *trunkFlags) Set(v string) error {
	*t = append(*t, v)
	return nil
}

func sipFlags(fs *flag.FlagSet, cfg *SIPConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.Addr, "sip-addr", env("SWITCHBOARD_SIP_ADDR", ""), "listen for SIP on this address, UDP and TCP, as 0.0.0.0:5060; empty is off (env SWITCHBOARD_SIP_ADDR)")
	fs.StringVar(&cfg.RTPPorts, "rtp-ports", env("SWITCHBOARD_RTP_PORTS", rtp.DefaultPorts), "the UDP port range of phone calls' RTP, a pair per call (env SWITCHBOARD_RTP_PORTS)")
	silence := fs.String("rtp-silence-timeout", env("SWITCHBOARD_RTP_SILENCE_TIMEOUT", "30s"), "end a phone call with 410 when its far end sends nothing for this long; 0 never (env SWITCHBOARD_RTP_SILENCE_TIMEOUT)")
	fs.StringVar(&cfg.MutedPrompt, "sip-muted-prompt", env("SWITCHBOARD_SIP_MUTED_PROMPT", ""), "a WAV file (16-bit PCM, any rate) a phone muted by others hears, saying that *6 unmutes it; empty is the built-in English one (env SWITCHBOARD_SIP_MUTED_PROMPT)")
	var trunks trunkFlags
	fs.Var(&trunks, "sip-trunk", "a carrier trunk, NAME=sip:USER:PASSWORD@HOST:PORT[;transport=tcp][;register[=SECONDS]][;prefix=+NN,...], repeatable: calls from HOST are trusted, others may authenticate with USER and PASSWORD; calls out take the trunk with the longest matching prefix (env SWITCHBOARD_SIP_TRUNKS, space-separated)")
	return func() error {
		if len(trunks) == 0 {
			trunks = strings.Fields(env("SWITCHBOARD_SIP_TRUNKS", ""))
		}
		for _, s := range trunks {
			t, err := sip.ParseTrunk(s)
			if err != nil {
				return fmt.Errorf("--sip-trunk: %w", err)
			}
			cfg.Trunks = append(cfg.Trunks, t)
		}
		if len(cfg.Trunks) > 0 && cfg.Addr == "" {
			return errors.New("--sip-trunk needs --sip-addr to listen on")
		}
		d, err := time.ParseDuration(*silence)
		if err != nil || d < 0 {
			return fmt.Errorf("--rtp-silence-timeout %q is not a duration of 0 or more", *silence)
		}
		cfg.SilenceTimeout = d
		if d == 0 {
			cfg.SilenceTimeout = -1 // never
		}
		return nil
	}
}

// startSIP starts the SIP user agent when --sip-addr is set.
func (m *Main) startSIP(ctx context.Context) error {
	if m.Config.SIP.Addr == "" {
		return nil
	}
	numbers := numberRoutes(m.store)
	if numbers == nil {
		return errors.New("--sip-addr: the store keeps no number routes")
	}
	muted := audio.MutedPrompt()
	if path := m.Config.SIP.MutedPrompt; path != "" {
		p, err := audio.LoadPromptWAV(path)
		if err != nil {
			return fmt.Errorf("--sip-muted-prompt: %w", err)
		}
		muted = p
	}
	var publicIP string
	if ips := m.Config.Media.PublicIPs; len(ips) > 0 {
		publicIP = ips[0]
	}
	engine, err := rtp.NewEngine(rtp.Config{
		Ports:          m.Config.SIP.RTPPorts,
		PublicIP:       publicIP,
		SilenceTimeout: m.Config.SIP.SilenceTimeout,
		Logger:         m.Logger,
	})
	if err != nil {
		return fmt.Errorf("--rtp-ports: %w", err)
	}
	srv, err := sip.New(ctx, sip.Config{
		Addr:        m.Config.SIP.Addr,
		Trunks:      m.Config.SIP.Trunks,
		Switchboard: m.switchboard,
		Numbers:     numbers,
		Media:       &phoneMedia{engine: engine, mixer: m.mixer, muted: muted, log: m.Logger},
		Logger:      m.Logger,
	})
	if err != nil {
		_ = engine.Close()
		return err
	}
	m.rtp = engine
	m.sip = srv
	m.phones.Set(srv)
	m.SIPAddr = srv.Addr()
	return nil
}

// trunkStatus is what /readyz lists of the SIP trunks: nil without
// --sip-addr (no trunks in the answer), none before the SIP server starts.
func (m *Main) trunkStatus() func() []api.TrunkStatus {
	if m.phones == nil {
		return nil
	}
	return func() []api.TrunkStatus {
		trunks := m.phones.Trunks()
		out := make([]api.TrunkStatus, 0, len(trunks))
		for _, t := range trunks {
			out = append(out, api.TrunkStatus{Name: t.Name, State: t.State, Error: t.Error})
		}
		return out
	}
}

// stopSIP ends the calls with the phone network (BYE, or 503 before an
// answer) and stops listening.
func (m *Main) stopSIP(ctx context.Context) error {
	if m.sip == nil {
		return nil
	}
	err := m.sip.Close(ctx)
	if m.rtp != nil {
		_ = m.rtp.Close()
	}
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	return nil
}

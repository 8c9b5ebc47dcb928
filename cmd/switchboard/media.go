package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/audio/udpbatch"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/turnserver"
)

// MediaConfig is the media plane's part of serve's configuration.
type MediaConfig struct {
	Devices []string // identity=spec as given, see openDevice
	// Bindings are Devices parsed: whose device, and which.
	Bindings  []DeviceBinding
	PublicIPs []string
	PortMin   uint16
	PortMax   uint16
	// SharedPort, when not zero, is the first of SharedPorts UDP ports
	// that WebRTC legs share (PortMin and PortMax are then unused).
	SharedPort  uint16
	SharedPorts int
	// TCP turns on ICE-TCP passive candidates on TCPPort (zero: a free
	// port).
	TCP     bool
	TCPPort uint16
	Grace   time.Duration
	HoldWAV string
	// QueueHold is what callers waiting in a queue hear (queuehold.go).
	QueueHold QueueHoldConfig
	// DebugAddr, when set, serves pprof and GET /debug/media there.
	DebugAddr string
	// ICE is the embedded TURN relay and the external ICE servers.
	ICE ICEConfig
}

// mediaFlags registers the media plane's flags; finish parses what flag
// cannot.
func mediaFlags(fs *flag.FlagSet, cfg *MediaConfig, env func(name, def string) string) (finish func() error) {
	fs.Func("device", "bind an audio device to an identity (repeatable): alice=default or alice=<PortAudio device name> (builds with -tags portaudio), alice=file:<mic.wav>:<record.wav>, alice=tone:<hz>", func(v string) error {
		cfg.Devices = append(cfg.Devices, v)
		return nil
	})
	publicIP := fs.String("public-ip", env("SWITCHBOARD_PUBLIC_IP", ""), "comma-separated public addresses to offer in WebRTC candidates instead of the host's (1:1 NAT, Docker) (env SWITCHBOARD_PUBLIC_IP)")
	ports := fs.String("udp-ports", env("SWITCHBOARD_UDP_PORTS", ""), "UDP port range for WebRTC media, as 40000-40199; empty is any (env SWITCHBOARD_UDP_PORTS)")
	shared := fs.String("udp-port", env("SWITCHBOARD_UDP_PORT", ""), "one UDP port every WebRTC leg shares, as 40000, or a few, as 40000-40007, that legs are spread over (instead of --udp-ports: sockets shared by every leg, reading and writing in batches); empty is off (env SWITCHBOARD_UDP_PORT)")
	tcp := fs.String("tcp-port", env("SWITCHBOARD_TCP_PORT", ""), "the TCP port of WebRTC's ICE-TCP passive candidates, for browsers that cannot send UDP, as 40000; empty is --udp-port's first port, or off without --udp-port; off turns it off (env SWITCHBOARD_TCP_PORT)")
	grace := fs.String("media-grace", env("SWITCHBOARD_MEDIA_GRACE", rtc.DefaultGrace.String()), "how long an audio endpoint whose peer vanished may come back before its calls end with 410 (env SWITCHBOARD_MEDIA_GRACE)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("SWITCHBOARD_DEBUG_ADDR", ""), "serve pprof (/debug/pprof/) and media stats (GET /debug/media), both behind the admin key, on this address, as 127.0.0.1:6060; empty is off (env SWITCHBOARD_DEBUG_ADDR)")
	fs.StringVar(&cfg.HoldWAV, "hold-wav", env("SWITCHBOARD_HOLD_WAV", ""), "a WAV file the far side of a held call hears instead of the hold tone (env SWITCHBOARD_HOLD_WAV)")
	finishICE := iceFlags(fs, &cfg.ICE, env)
	finishQueueHold := queueHoldFlags(fs, &cfg.QueueHold, env)
	return func() error {
		if err := finishICE(); err != nil {
			return err
		}
		if err := finishQueueHold(); err != nil {
			return err
		}
		for _, ip := range strings.Split(*publicIP, ",") {
			if ip = strings.TrimSpace(ip); ip != "" {
				cfg.PublicIPs = append(cfg.PublicIPs, ip)
			}
		}
		var err error
		if cfg.Grace, err = time.ParseDuration(*grace); err != nil || cfg.Grace <= 0 {
			return fmt.Errorf("--media-grace %q is not a positive duration", *grace)
		}
		if *ports != "" {
			lo, hi, ok := strings.Cut(*ports, "-")
			a, errA := strconv.ParseUint(lo, 10, 16)
			b, errB := strconv.ParseUint(hi, 10, 16)
			if !ok || errA != nil || errB != nil || a == 0 || a > b {
				return fmt.Errorf("--udp-ports %q is not a range like 40000-40199", *ports)
			}
			cfg.PortMin, cfg.PortMax = uint16(a), uint16(b)
		}
		if *shared != "" {
			lo, hi, isRange := strings.Cut(*shared, "-")
			if !isRange {
				hi = lo
			}
			a, errA := strconv.ParseUint(lo, 10, 16)
			b, errB := strconv.ParseUint(hi, 10, 16)
			if errA != nil || errB != nil || a == 0 || a > b || b-a >= maxSharedPorts {
				return fmt.Errorf("--udp-port %q is not a port like 40000 or a range of up to %d like 40000-40007", *shared, maxSharedPorts)
			}
			cfg.SharedPort, cfg.SharedPorts = uint16(a), int(b-a+1)
		}
		switch *tcp {
		case "off":
		case "":
			cfg.TCP, cfg.TCPPort = cfg.SharedPort != 0, cfg.SharedPort
		default:
			p, err := strconv.ParseUint(*tcp, 10, 16)
			if err != nil || p == 0 {
				return fmt.Errorf("--tcp-port %q is not a port like 40000, or off", *tcp)
			}
			cfg.TCP, cfg.TCPPort = true, uint16(p)
		}
		for _, d := range cfg.Devices {
			rawID, spec, err := splitDevice(d)
			if err != nil {
				return err
			}
			cfg.Bindings = append(cfg.Bindings, DeviceBinding{RawID: rawID, Spec: spec})
		}
		return nil
	}
}

// maxSharedPorts bounds --udp-port's range: each port has a socket and a
// reading goroutine per local address, and a few carry thousands of legs.
const maxSharedPorts = 64

// DeviceBinding is one --device: an identity's raw id and its device spec.
type DeviceBinding struct {
	RawID, Spec string
}

// splitDevice reads identity=spec; a bare name is a Communication Services
// user.
func splitDevice(v string) (rawID, spec string, err error) {
	who, spec, ok := strings.Cut(v, "=")
	if !ok || who == "" || spec == "" {
		return "", "", fmt.Errorf("--device %q: want identity=device, as alice=default", v)
	}
	if !strings.Contains(who, ":") {
		who = calls.CommunicationUser(who).RawID()
	}
	return who, spec, nil
}

// openDevice opens one --device spec.
func openDevice(spec string, log *slog.Logger) (audio.Endpoint, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "file":
		mic, record, _ := strings.Cut(arg, ":")
		var src audio.MicSource
		if mic != "" {
			frames, err := audio.ReadWAV(mic)
			if err != nil {
				return nil, err
			}
			src = &audio.Loop{Frames: frames}
		}
		return audio.NewFileEndpoint(src, record)
	case "tone":
		hz, err := strconv.ParseFloat(arg, 64)
		if err != nil || hz <= 0 || hz >= audio.SampleRate/2 {
			return nil, fmt.Errorf("tone:%s: want a frequency below 4000 Hz", arg)
		}
		return audio.NewFileEndpoint(audio.NewTone(hz, -20), "")
	}
	return openHostDevice(spec, log)
}

// newMixer makes the media plane's mixer; speaking reports go to the
// switchboard, which must be set before the mixer runs.
func (m *Main) newMixer() (*audio.Mixer, error) {
	hold := audio.DefaultHold()
	if f := m.Config.Media.HoldWAV; f != "" {
		var err error
		if hold, err = audio.LoadHoldWAV(f); err != nil {
			return nil, err
		}
	}
	music, err := queueMusic(m.Config.Media.QueueHold)
	if err != nil {
		return nil, err
	}
	return audio.NewMixer(audio.MixerConfig{
		Hold:       hold,
		QueueMusic: music,
		EchoBot:    calls.EchoBot.RawID(),
		OnSpeaking: func(callID string, speaking bool) { m.switchboard.ReportSpeaking(callID, speaking) },
		Logger:     m.Logger,
	}), nil
}

// startMedia starts the mixer's clock and the WebRTC attacher, and binds
// the configured devices. The switchboard must exist (speaking goes to it).
func (m *Main) startMedia() error {
	cfg := m.Config.Media
	// The embedded relay hands packets for the shared media ports to
	// their legs in memory, and takes theirs back the same way.
	var local *udpbatch.Local
	if cfg.ICE.TURNAddr != "" && cfg.SharedPort != 0 {
		local = udpbatch.NewLocal()
	}
	engine, err := rtc.NewEngine(rtc.Config{
		PublicIPs: cfg.PublicIPs, PortMin: cfg.PortMin, PortMax: cfg.PortMax,
		Shared: cfg.SharedPort != 0, SharedPort: cfg.SharedPort, SharedPorts: cfg.SharedPorts,
		TCP: cfg.TCP, TCPPort: cfg.TCPPort, Local: local,
		Logger: m.Logger,
	})
	if err != nil {
		return err
	}
	m.engine = engine
	if err := m.startTURN(local); err != nil {
		return err
	}
	m.attacher = rtc.NewAttacher(engine, m.mixer, cfg.Grace, m.switchboard.MediaLost, m.Logger)
	for i, b := range cfg.Bindings {
		who, spec := b.RawID, b.Spec
		ep, err := openDevice(spec, m.Logger)
		if err != nil {
			return fmt.Errorf("--device %s: %w", cfg.Devices[i], err)
		}
		m.mixer.Attach(who, ep)
		m.Logger.Info("audio endpoint bound", "identity", who, "device", spec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.DebugAddr != "" {
		addr, err := startDebug(ctx, cfg.DebugAddr, m.Config.AdminKey, m.mixer, engine, m.turn, m.Logger)
		if err != nil {
			cancel()
			return err
		}
		m.DebugAddr = addr
	}
	m.stopMixer = cancel
	m.mixerDone = make(chan error, 1)
	go func() { m.mixerDone <- m.mixer.Run(ctx) }()
	return nil
}

// stopMedia stops the clock, which closes every endpoint, then the WebRTC
// engine's shared socket, if any.
func (m *Main) stopMedia() error {
	if m.attacher != nil {
		m.attacher.Close()
	}
	var err error
	if m.stopMixer != nil {
		m.stopMixer()
		if runErr := <-m.mixerDone; runErr != nil && !errors.Is(runErr, context.Canceled) {
			err = fmt.Errorf("mixer: %w", runErr)
		}
		if s := m.mixer.Stats(); s.Ticks > 0 {
			m.Logger.Info("media plane stopped", "ticks", s.Ticks, "late_ticks", s.Late, "max_late", s.MaxLate)
		}
	}
	if m.engine != nil {
		err = errors.Join(err, m.engine.Close())
	}
	if m.turn != nil {
		err = errors.Join(err, m.turn.Close())
	}
	return err
}

// startTURN starts the embedded TURN relay (--turn-addr), if configured,
// and the ICE server list clients get; local, if not nil, carries its
// packets to and from the media ports in memory.
func (m *Main) startTURN(local *udpbatch.Local) error {
	cfg := m.Config.Media
	if cfg.ICE.TURNAddr != "" {
		relayIP := ""
		if len(cfg.PublicIPs) > 0 {
			relayIP = cfg.PublicIPs[0]
		}
		t, err := turnserver.New(turnserver.Config{
			Addr: cfg.ICE.TURNAddr, RelayIP: relayIP,
			RelayPortMin: cfg.ICE.TURNRelayPortMin, RelayPortMax: cfg.ICE.TURNRelayPortMax,
			Realm: cfg.ICE.TURNRealm, Secret: turnSecret(m.Config.AdminKey), TTL: cfg.ICE.CredentialTTL,
			AllowPeer: mediaPeers(cfg, m.Logger), Local: local, Logger: m.Logger,
		})
		if err != nil {
			return fmt.Errorf("--turn-addr %s: %w", cfg.ICE.TURNAddr, err)
		}
		m.turn = t
	}
	m.ice = newICEDirectory(m.turn, cfg.ICE.TURNAddr, cfg.PublicIPs, cfg.ICE.CredentialTTL, cfg.ICE.Servers)
	return nil
}

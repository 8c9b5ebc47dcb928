package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/phone"
)

// phoneCmd is a WebRTC softphone for people and tests: it attaches as the
// token holder's audio endpoint, dials or answers, speaks a tone or a WAV
// file, and records what it hears.
func phoneCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("phone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", serverURL(getenv), urlUsage)
	tok := fs.String("token", getenv("SWITCHBOARD_TOKEN"), "the identity's token (env SWITCHBOARD_TOKEN)")
	tone := fs.Float64("tone", 0, "speak a sine tone of this frequency in Hz")
	wav := fs.String("wav", "", "speak this WAV file, looped")
	record := fs.String("record", "", "record what the phone hears to this WAV file (8 kHz mono)")
	dial := fs.String("call", "", "call this identity by raw id (8:acs:alice, 8:echo123, 4:+14255550123)")
	answer := fs.Bool("answer", false, "wait for an incoming call and accept it")
	duration := fs.Duration("duration", 0, "hang up after this long (0: at Ctrl-C)")
	var ca string
	caCertFlag(fs, &ca, getenv)
	relay := fs.Bool("relay", false, "send media through the switchboard's TURN relay only (GET /api/media/ice-servers), as a client behind a strict NAT would")
	tcpOnly := fs.Bool("tcp", false, "send nothing over UDP: ICE-TCP to the switchboard's media port, or TURN over TCP with --relay, as a client behind a firewall that drops UDP would")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case *tok == "":
		return errors.New("phone needs --token (mint one with switchboard token)")
	case *dial != "" && *answer:
		return errors.New("phone takes --call or --answer, not both")
	case *tone != 0 && *wav != "":
		return errors.New("phone takes --tone or --wav, not both")
	case *tone < 0 || *tone >= audio.SampleRate/2:
		return fmt.Errorf("--tone %v: want a frequency below %d Hz", *tone, audio.SampleRate/2)
	}
	tlsConf, err := clientTLS(ca)
	if err != nil {
		return err
	}
	opts := phone.Options{ICEServers: true, Relay: *relay, TCPOnly: *tcpOnly}
	if tlsConf != nil {
		opts.HTTP = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf}}
	}
	switch {
	case *tone > 0:
		opts.Mic = audio.NewTone(*tone, -20)
	case *wav != "":
		frames, err := audio.ReadWAV(*wav)
		if err != nil {
			return err
		}
		opts.Mic = &audio.Loop{Frames: frames}
	}
	if *record != "" {
		rec, err := audio.NewFileEndpoint(nil, *record)
		if err != nil {
			return err
		}
		opts.Record = rec
	}
	engine, err := rtc.NewEngine(rtc.Config{Loopback: true})
	if err != nil {
		return err
	}
	connectCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	p, err := phone.Connect(connectCtx, engine, *base, *tok, opts)
	cancel()
	if err != nil {
		if opts.Record != nil {
			_ = opts.Record.Close()
		}
		return err
	}
	fmt.Fprintln(stdout, "audio connected")

	if *duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, *duration)
		defer stop()
	}
	ctx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	running := make(chan struct{})
	go func() { defer close(running); p.Run(ctx) }()

	var callID string
	switch {
	case *dial != "":
		callID, err = p.Call(ctx, *dial)
	case *answer:
		callID, err = p.Answer(ctx)
	}
	if err != nil {
		hangUp()
	} else if callID != "" {
		fmt.Fprintln(stdout, "in call", callID)
	}
	<-ctx.Done()
	<-running
	if callID != "" {
		hangCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if herr := p.Hangup(hangCtx, callID); herr != nil {
			fmt.Fprintln(stderr, "phone: hanging up:", herr)
		}
		cancel()
	}
	return errors.Join(err, p.Close())
}

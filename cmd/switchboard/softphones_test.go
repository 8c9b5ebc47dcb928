package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/phone"
)

// softphones gives a media test its pion WebRTC softphones on the server
// at base: connect dials one in with tok, speaking a tone of hz at -20
// dBFS and keeping what it hears. ctx is theirs; when the test ends it is
// cancelled, each phone's Run has returned and every phone is closed.
func softphones(t *testing.T, base string) (ctx context.Context, connect func(tok string, hz float64) *phone.Phone) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	engine := phoneEngine(t)
	var (
		phones  []*phone.Phone
		running sync.WaitGroup
	)
	t.Cleanup(func() {
		cancel()
		running.Wait()
		for _, p := range phones {
			p.Close()
		}
	})
	connect = func(tok string, hz float64) *phone.Phone {
		t.Helper()
		p, err := phone.Connect(ctx, engine, base, tok, phone.Options{Mic: audio.NewTone(hz, -20), KeepHeard: true})
		if err != nil {
			t.Fatal(err)
		}
		phones = append(phones, p)
		running.Go(func() { p.Run(ctx) })
		return p
	}
	return ctx, connect
}

// answered has the customer on cust call amy, who accepts through the API
// (her token amyTok, her event stream amyNext), and waits until each
// hears the other's tone (custHz, amyHz); it answers amy's call id.
func answered(t *testing.T, ctx context.Context, base string, cust, amy *phone.Phone, custHz, amyHz float64,
	amyTok string, amyNext func() (map[string]any, error)) string {
	t.Helper()
	if _, err := cust.Call(ctx, "8:acs:amy"); err != nil {
		t.Fatal(err)
	}
	amyCall := waitIncoming(t, amyNext)
	post(t, base+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
	start := time.Now()
	if !phoneHears(cust, start, amyHz, true) || !phoneHears(amy, start, custHz, true) {
		t.Fatal("the customer and the agent do not hear each other")
	}
	return amyCall
}

// firstSnapshots fails t unless each event stream's first event is its
// snapshot.
func firstSnapshots(t *testing.T, streams ...func() (map[string]any, error)) {
	t.Helper()
	for _, next := range streams {
		if ev, err := next(); err != nil || ev["type"] != "snapshot" {
			t.Fatalf("first event %v, %v", ev, err)
		}
	}
}

// framesSince is what p heard from time from on.
func framesSince(p *phone.Phone, from time.Time) []audio.Frame {
	var out []audio.Frame
	for _, h := range p.Heard() {
		if !h.At.Before(from) {
			out = append(out, h.Frame)
		}
	}
	return out
}

// framesBetween is what p heard from from until until.
func framesBetween(p *phone.Phone, from, until time.Time) []audio.Frame {
	var out []audio.Frame
	for _, h := range p.Heard() {
		if !h.At.Before(from) && h.At.Before(until) {
			out = append(out, h.Frame)
		}
	}
	return out
}

// phoneHears waits up to 5 s for a second of frames on p, heard after
// from, of which at least 40 (want) or at most 2 (!want) carry hz.
func phoneHears(p *phone.Phone, from time.Time, hz float64, want bool) bool {
	return within(5*time.Second, func() bool {
		heard := framesSince(p, from)
		if len(heard) < 50 {
			return false
		}
		n := countTone(heard[len(heard)-50:], hz)
		if want {
			return n >= 40
		}
		return n <= 2
	})
}

// monFramesUntil counts the frames p heard from from on before the first
// that carries hz (present) or lacks it (absent): how long a switch took
// to be heard, in 20 ms frames; -1 if it never was.
func monFramesUntil(p *phone.Phone, from time.Time, hz float64, present bool) int {
	for i, f := range framesSince(p, from) {
		if (audio.ToneLevel(&f, hz) > toneLevel) == present {
			return i
		}
	}
	return -1
}

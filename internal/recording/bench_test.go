package recording

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/store"
)

// BenchmarkTick is one tick of the mixer's clock with 100 1:1 calls
// (looped tone endpoints on both sides), none or some of them recorded: the
// clock's cost of the taps (a copy of two frames and a channel send per
// recorded call; the writers run on their own goroutines). Run it with a
// fixed count, since every recorded call writes 32 KB a second of audio:
//
//	go test -run '^$' -bench Tick -benchtime 1500x ./internal/recording/
func BenchmarkTick(b *testing.B) {
	const conversations = 100
	for _, recorded := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("calls=%d/recorded=%d", conversations, recorded), func(b *testing.B) {
			mixer, svc := benchCalls(b, conversations, recorded)
			mixer.Tick()
			b.ResetTimer()
			for range b.N {
				mixer.Tick()
			}
			b.StopTimer()
			if err := svc.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRecordingCPU runs the mixer's real clock for three seconds
// with 100 1:1 calls, none or all of them recorded, and reports the
// process's CPU time per second of calls (user and system, from
// getrusage): the clock, the taps and the writers with their disk writes,
// as a switchboard spends them. Run it once:
//
//	go test -run '^$' -bench RecordingCPU -benchtime 1x ./internal/recording/
func BenchmarkRecordingCPU(b *testing.B) {
	const conversations = 100
	for _, recorded := range []int{0, 100} {
		b.Run(fmt.Sprintf("calls=%d/recorded=%d", conversations, recorded), func(b *testing.B) {
			mixer, svc := benchCalls(b, conversations, recorded)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			before := cpuTime(b)
			start := time.Now()
			go func() { defer close(done); _ = mixer.Run(ctx) }()
			time.Sleep(3 * time.Second)
			cancel()
			<-done
			if err := svc.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			used := cpuTime(b) - before
			b.ReportMetric(float64(used.Microseconds())/1000/elapsed.Seconds(), "cpu-ms/s")
			b.ReportMetric(float64(mixer.Stats().Late), "late-ticks")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCalls is a mixer with conversations 1:1 calls between looped tone
// endpoints, the first recorded of them recorded.
func benchCalls(b *testing.B, conversations, recorded int) (*audio.Mixer, *Service) {
	b.Helper()
	mixer := audio.NewMixer(audio.MixerConfig{Logger: quiet})
	st := store.NewMemory()
	svc, err := New(context.Background(), Config{Dir: b.TempDir(), Media: mixer, Store: st, Publisher: &callstest.Publisher{},
		Calls: &liveCalls{}, NewID: func() string { return "unused" }, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	svc.cfg.NewID = func() string { n++; return fmt.Sprintf("rec-%d", n) }
	for i := range conversations {
		agent, customer := fmt.Sprintf("agent-%d", i), fmt.Sprintf("customer-%d", i)
		for j, who := range []string{agent, customer} {
			// A tone of whole 50 Hz cycles a frame repeats every
			// frame: one precomputed frame, so that the tick's cost
			// is the mixer's, not the sine's.
			var f audio.Frame
			audio.NewTone(float64(300+100*j), -20).Next(&f)
			ep, err := audio.NewFileEndpoint(&audio.Loop{Frames: []audio.Frame{f}}, "")
			if err != nil {
				b.Fatal(err)
			}
			mixer.Attach(who, ep)
		}
		mixer.SetRoute(calls.Route{ServerCallID: fmt.Sprint("srv-", i), Kind: calls.OneToOne, Members: []calls.MediaMember{
			{RawID: agent, CallID: "a-" + agent, Send: true, Receive: true},
			{RawID: customer, CallID: "c-" + customer, Send: true, Receive: true},
		}})
		if i < recorded {
			if _, err := svc.StartFor(context.Background(), calls.Call{ID: "a-" + agent, AgentID: agent}, calls.Actor{Kind: calls.ActorSystem}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return mixer, svc
}

package rtc

import (
	"runtime"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestSendingAllocatesNothing: on a connected leg, encrypting and sending
// a packet allocates nothing (a thousand legs send 50,000 a second), on
// shared sockets and on a socket of its own.
func TestSendingAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	client := testEngine(t)
	for _, shared := range []bool{true, false} {
		t.Run(map[bool]string{true: "shared sockets", false: "sockets of its own"}[shared], func(t *testing.T) {
			server, err := NewEngine(Config{Loopback: true, IPv4Only: true, Shared: shared})
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, server)
			caller, callee, _ := pairAcross(t, client, server)
			defer caller.Close()
			defer callee.Close()
			payload := make([]byte, audio.FrameSamples)
			for range 20 { // the first packets set up the fast path and its buffers
				caller.Send(payload)
				callee.Send(payload)
				time.Sleep(time.Millisecond)
			}
			if shared && server.Stats().Fast == 0 {
				t.Error("no packet took the fast path")
			}
			// A burst as quick as the one measured fills the shared
			// sockets' pool of queue slots (the flusher returns them).
			for range 1000 {
				callee.Send(payload)
			}
			// On a loaded machine the flusher may not have given the slots
			// back yet, and a send then allocates one; a leg whose fast
			// path allocates does so in every attempt.
			var n float64
			for attempt := 0; attempt < 5; attempt++ {
				time.Sleep(time.Duration(10<<attempt) * time.Millisecond)
				if n = testing.AllocsPerRun(200, func() { callee.Send(payload) }); n <= 0.1 {
					break
				}
			}
			if n > 0.1 {
				t.Errorf("Send allocates %.2f times a packet", n)
			}
		})
	}
}

// TestReleasedLegsHoldLittle: an answering leg on a shared port whose
// media flows has let its ICE agent go (release.go): it keeps no
// goroutine, and little heap (its jitter buffer, SRTP contexts and
// buffers). Measured as what closing the answering legs gives back, with
// their callers left open.
func TestReleasedLegsHoldLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory")
	}
	const legs = 40
	server, err := NewEngine(Config{Loopback: true, IPv4Only: true, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, server)
	client, err := NewEngine(Config{Loopback: true, IPv4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	var callers, callees []*Leg
	defer func() {
		for _, l := range callers {
			l.Close()
		}
	}()
	for range legs {
		caller, callee, _ := pairAcross(t, client, server)
		callers, callees = append(callers, caller), append(callees, callee)
	}
	payload := make([]byte, audio.FrameSamples)
	for deadline := time.Now().Add(10 * time.Second); ; {
		released := 0
		for i, caller := range callers {
			caller.Send(payload)
			callees[i].Send(payload)
			if callees[i].released.Load() {
				released++
			}
		}
		if released == legs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d answering legs released their agents in 10 s", released, legs)
		}
		time.Sleep(audio.FrameDuration)
	}
	time.Sleep(200 * time.Millisecond) // the agents' goroutines end
	open := measure()
	for _, l := range callees {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	closed := measure()
	goroutines := float64(open.goroutines-closed.goroutines) / legs
	heap := float64(int64(open.heap)-int64(closed.heap)) / legs / 1024
	t.Logf("an answering leg holds %.1f goroutines and %.1f KiB of heap", goroutines, heap)
	if goroutines > 0.5 {
		t.Errorf("an answering leg holds %.1f goroutines; want none", goroutines)
	}
	// Before the agent was released a leg held about 6 goroutines and
	// 60-90 KiB of heap.
	if heap > 32 {
		t.Errorf("an answering leg holds %.1f KiB of heap; want at most 32", heap)
	}
}

type usage struct {
	goroutines int
	heap       uint64
}

// measure is the process's goroutines and live heap after a collection.
func measure() usage {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{runtime.NumGoroutine(), m.HeapAlloc}
}

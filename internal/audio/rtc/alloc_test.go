package rtc

import (
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
			time.Sleep(10 * time.Millisecond)
			if n := testing.AllocsPerRun(200, func() { callee.Send(payload) }); n > 0.1 {
				t.Errorf("Send allocates %.2f times a packet", n)
			}
		})
	}
}

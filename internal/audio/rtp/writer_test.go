package rtp

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestPlayQueuesForTheWriter holds a leg's writer back while the mixer's
// clock plays more frames than the queue holds: the oldest are dropped
// and counted, and once the writer runs the peer gets the newest, in
// order, with the gap in their sequence numbers that tells of the loss.
func TestPlayQueuesForTheWriter(t *testing.T) {
	tests := []struct {
		name    string
		played  int
		dropped int
	}{
		{name: "fewer than the queue holds", played: 2},
		{name: "as many as the queue holds", played: sendRing},
		{name: "more: the oldest are dropped", played: sendRing + 3, dropped: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEngine(t, Config{})
			p := newPeer(t)
			l, err := e.newLeg(LegOptions{}, false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			if _, err := l.Answer(p.offer()); err != nil {
				t.Fatal(err)
			}
			l.sendMu.Lock()
			first := l.seq
			l.sendMu.Unlock()
			var f audio.Frame
			for range tt.played {
				l.Play(audio.Output{PCM: &f})
			}
			if s := l.Stats(); s.Sent != 0 || s.Dropped != uint64(tt.dropped) {
				t.Fatalf("before the writer ran: %+v, want nothing sent and %d dropped", s, tt.dropped)
			}
			l.startWriter()
			want := first + uint16(tt.dropped)
			for range tt.played - tt.dropped {
				pkt, ok := readRTP(t, p.rtp)
				if !ok {
					t.Fatal("the peer did not get a queued packet")
				}
				if pkt.SequenceNumber != want {
					t.Errorf("sequence number %d, want %d", pkt.SequenceNumber, want)
				}
				want = pkt.SequenceNumber + 1
			}
			written(t, l)
			s, es := l.Stats(), e.Stats()
			if s.Sent != uint64(tt.played-tt.dropped) || s.Dropped != uint64(tt.dropped) {
				t.Errorf("leg stats %+v, want %d sent and %d dropped", s, tt.played-tt.dropped, tt.dropped)
			}
			if es.Sent != s.Sent || es.Dropped != s.Dropped {
				t.Errorf("engine stats %+v, want the leg's sent and dropped", es)
			}
		})
	}
}

// TestPlayWhileClosing plays from the mixer's clock while the leg closes,
// as a call that hangs up does: nothing is sent after Close, and the
// writer is gone with the leg's other goroutines.
func TestPlayWhileClosing(t *testing.T) {
	before := runtime.NumGoroutine()
	e := testEngine(t, Config{})
	for range 5 {
		p := newPeer(t)
		l := p.answered(e)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f audio.Frame
			for range 200 {
				l.Play(audio.Output{PCM: &f})
			}
		}()
		if _, ok := readRTP(t, p.rtp); !ok {
			t.Fatal("nothing sent before Close")
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		sent := l.Stats().Sent
		var f audio.Frame
		l.Play(audio.Output{PCM: &f})
		if got := l.Stats().Sent; got != sent {
			t.Errorf("sent %d packets after Close", got-sent)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

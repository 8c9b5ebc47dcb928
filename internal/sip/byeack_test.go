package sip_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sip"
)

// closingLeg is a media leg that says when it is closed.
type closingLeg struct {
	sip.MediaLeg
	once   sync.Once
	closed chan struct{}
}

func (l *closingLeg) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.MediaLeg.Close()
}

// closingMedia hands out one closingLeg per call, on a channel.
type closingMedia struct{ legs chan *closingLeg }

func (m closingMedia) NewLeg(ctx context.Context, phone calls.Identifier) (sip.MediaLeg, error) {
	base, err := sip.NoMedia{}.NewLeg(ctx, phone)
	if err != nil {
		return nil, err
	}
	l := &closingLeg{MediaLeg: base, closed: make(chan struct{})}
	m.legs <- l
	return l, nil
}

// TestByeBeforeAck: the carrier (sipp, testdata/sipp/bye_before_ack.xml)
// hangs up after the switchboard's 200 but before it acknowledges it. The
// BYE gets 200 (sipp checks), the call ends as the phone hanging up (not
// as an answer never acknowledged), and the call's handler lets its media
// leg go without waiting out the ACK's retransmissions.
func TestByeBeforeAck(t *testing.T) {
	for _, transport := range []string{"u1", "t1"} {
		t.Run(transport, func(t *testing.T) {
			media := closingMedia{legs: make(chan *closingLeg, 1)}
			h := newHarnessWith(t, func(c *sip.Config) { c.Media = media }, "carrier=sip:127.0.0.1")
			run := h.startSipp("bye_before_ack.xml", routed, transport)
			in := h.incoming()
			leg := <-media.legs
			// The answer's 200 goes out as the switchboard connects the
			// call; sipp answers it with BYE, which may come before Accept
			// returns or after.
			if _, err := h.f.Accept(context.Background(), alice, in.ID); err != nil && calls.ErrorCode(err) != calls.CodeCallNotFound {
				t.Fatalf("Accept: %v", err)
			}
			ended := h.next(alice.Identifier.RawID(), calls.EventCallEnded)
			run.wait(t)
			if ended.CallID != in.ID {
				t.Fatalf("callEnded for %s, want %s", ended.CallID, in.ID)
			}
			h.wantEnded(in.ID, calls.ReasonRemoteHungUp)
			h.wantEnded(h.phoneCall(in.ID).ID, sip.ReasonPhoneHungUp)
			select {
			case <-leg.closed:
			case <-time.After(20 * time.Second): // a hang, not a speed check
				t.Fatal("the call's media leg is still open: its handler waits for the ACK")
			}
		})
	}
}

package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// VoicemailRecorder records a queue caller's voicemail:
// recording.Service.StartVoicemail (her microphone on the right, the
// left silent).
type VoicemailRecorder interface {
	StartVoicemail(ctx context.Context, c calls.Call) (calls.Recording, error)
}

// VoicemailGreeter plays a caller's call the voicemail greeting, then
// silence: it answers how long the greeting lasts and stop, which ends
// what it plays (the media plane: the mixer's queue wait).
type VoicemailGreeter func(callID string) (greeting time.Duration, stop func())

// QueueVoicemail answers the engine's Voicemail hook (queue.EngineConfig)
// for the callers of this node: the caller's call, still live, hears the
// greeting; once it played, her audio is recorded (the recording is the
// call's, in its history, for supervisors); maxSeconds later her call
// ends 0/7017 (calls.ReasonVoicemail). Hanging up is how a caller
// finishes her message: when she hangs up first (during the greeting
// too), her call ends 0/7017 all the same (calls.Switchboard.
// MarkVoicemail), the recording stopping with it, so that history and the
// queue's stats (which count it a voicemail) agree; whether she said
// anything is in the recording (none when she hung up during the
// greeting). A failure (media lost, a shutdown) keeps its own reason. It
// answers an error, and does nothing, when the caller's call is not live
// here: the engine ends it as at max wait.
func QueueVoicemail(sw *QueueSwitch, rec VoicemailRecorder, greet VoicemailGreeter, log *slog.Logger) func(ctx context.Context, w queue.Waiting, maxSeconds int) error {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, w queue.Waiting, maxSeconds int) error {
		p, err := sw.caller(w)
		if err != nil {
			return err
		}
		c, err := sw.sb.GetCall(ctx, p, w.CallID)
		if err != nil {
			return err
		}
		if c.State != calls.StateConnected {
			return calls.Errorf(calls.CodeInvalidState, "the caller's call %s is %s", c.ID, c.State)
		}
		if err := sw.sb.MarkVoicemail(c.ID); err != nil {
			return err // she hung up just now
		}
		sw.forget(w.CallID) // out of the queue: the engine asks no more
		log := log.With("queue", w.Queue, "call_id", c.ID)
		greeting, stop := greet(c.ID)
		end := func() {
			sw.sb.EndWith(context.Background(), c.ID, calls.ReasonVoicemail)
			stop()
		}
		time.AfterFunc(greeting, func() {
			ctx := context.Background()
			if live, err := sw.sb.GetCall(ctx, p, c.ID); err != nil || live.State != calls.StateConnected {
				stop() // she hung up during the greeting
				return
			}
			r, err := rec.StartVoicemail(ctx, c)
			if err != nil {
				log.Warn("queue: voicemail: the recording did not start; ending the call", "err", err)
				end()
				return
			}
			log.Info("queue: voicemail recording", "recording_id", r.ID, "max_seconds", maxSeconds)
			time.AfterFunc(time.Duration(maxSeconds)*time.Second, end)
		})
		return nil
	}
}

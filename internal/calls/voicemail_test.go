package calls_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestMarkVoicemail: a queue caller's call gone to voicemail (marked)
// ends 0/7017 however it ends normally: its recording's end
// (EndWith), her own hang-up from her app, her phone's BYE; a failure
// (media lost) keeps its reason, and so does a call never marked. Her
// phone's line hears the same end as history records. A call that ended
// before it is marked is call_not_found.
func TestMarkVoicemail(t *testing.T) {
	mediaLost := calls.ReasonMediaLost
	tests := []struct {
		name     string
		phone    bool // she called from the phone network (else her app)
		unmarked bool // never marked: the control
		end      func(t *testing.T, f *callstest.Fixture, id string)
		want     calls.EndReason
	}{
		{name: "her recording ends at voicemailMaxSeconds", end: func(t *testing.T, f *callstest.Fixture, id string) {
			f.EndWith(ctx, id, calls.ReasonVoicemail)
		}, want: calls.ReasonVoicemail},
		{name: "she hangs up in her app", end: hangUpCaller, want: calls.ReasonVoicemail},
		{name: "she hangs up in her app, never marked", unmarked: true, end: hangUpCaller, want: calls.ReasonHungUp},
		{name: "her phone hangs up (BYE)", phone: true, end: func(t *testing.T, f *callstest.Fixture, id string) {
			if err := f.EndPhoneCall(ctx, id, calls.EndReason{Message: "the phone hung up"}); err != nil {
				t.Fatal(err)
			}
		}, want: calls.ReasonVoicemail},
		{name: "her phone's media is lost", phone: true, end: func(t *testing.T, f *callstest.Fixture, id string) {
			if err := f.EndPhoneCall(ctx, id, mediaLost); err != nil {
				t.Fatal(err)
			}
		}, want: mediaLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := callstest.New(t, calls.Config{Queues: &callstest.Queues{}})
			f.Connect(t, customer)
			ln := &line{}
			var id string
			if tt.phone {
				id = mustCall(t)(f.StartPhoneQueueCall(ctx, calls.PhoneQueueRequest{Caller: phone, Queue: "support", Line: ln})).ID
			} else {
				id = mustCall(t)(f.JoinCall(ctx, customer, calls.JoinRequest{GroupID: "5d1f0a9e-2222-4e2a-9a43-7c1c64b1c0de"})).ID
			}
			if !tt.unmarked {
				if err := f.MarkVoicemail(id); err != nil {
					t.Fatal(err)
				}
			}
			tt.end(t, f, id)
			wantEnded(t, f, id, tt.want)
			if tt.phone {
				if r := ln.last().CallEndReason; r == nil || r.Code != tt.want.Code || r.SubCode != tt.want.SubCode {
					t.Errorf("her phone's line heard the end %+v, want %d/%d", r, tt.want.Code, tt.want.SubCode)
				}
			}
			wantCode(t, f.MarkVoicemail(id), calls.CodeCallNotFound)
		})
	}
}

// hangUpCaller hangs up the customer's call id.
func hangUpCaller(t *testing.T, f *callstest.Fixture, id string) {
	t.Helper()
	mustCall(t)(f.HangUp(ctx, customer, id, false))
}

package sip

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// tellingLeg counts what MutedByOthers told it.
type tellingLeg struct {
	noLeg
	told int
}

func (l *tellingLeg) MutedByOthers() { l.told++ }

func TestMuteTracker(t *testing.T) {
	tests := []struct {
		name  string
		muted []bool // the phone's call's isMuted, change after change
		told  int
	}{
		{"never muted", []bool{false, false}, 0},
		{"muted once", []bool{false, true, true}, 1},
		{"muted at once", []bool{true}, 1},
		{"muted, unmuted (*6), muted again", []bool{true, false, true}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leg := &tellingLeg{}
			var m muteTracker
			for _, muted := range tt.muted {
				m.follow(calls.Call{State: calls.StateConnected, IsMuted: muted}, leg)
			}
			if leg.told != tt.told {
				t.Errorf("told %d times, want %d", leg.told, tt.told)
			}
		})
	}
	var m muteTracker
	m.follow(calls.Call{IsMuted: true}, &noLeg{}) // a leg that cannot tell: nothing happens
}

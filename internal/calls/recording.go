package calls

import (
	"context"
	"time"
)

// EventRecordingStateChanged tells a call's agent (and supervisors) that
// the call's recording started, paused, resumed or stopped; its data is
// the Recording as it stands after the change, so a console can show an
// indicator. The other parties of the call get it on their own calls
// with a RecordingNotice.
const EventRecordingStateChanged EventType = "recordingStateChanged"

// RecordingNotice is the data of recordingStateChanged for the other
// parties of a recorded call (a customer): only where the recording
// stands, not who started it nor where it is kept.
type RecordingNotice struct {
	State RecordingState `json:"state"`
}

// RecordingState is where a call's recording stands.
type RecordingState string

// The recording states.
const (
	RecordingActive  RecordingState = "recording"
	RecordingPaused  RecordingState = "paused"
	RecordingStopped RecordingState = "stopped"
)

// PausedSpan is one pause of a recording: the file holds silence from
// Start to End (nil while still paused).
type PausedSpan struct {
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end,omitempty"`
	// PausedBy and ResumedBy are who did it (ResumedBy is missing when
	// the recording stopped while paused).
	PausedBy  *Actor `json:"pausedBy,omitempty"`
	ResumedBy *Actor `json:"resumedBy,omitempty"`
}

// Recording is one recording of one call: a stereo WAV file, the call's
// agent's microphone on the left and the rest of the call on the right.
type Recording struct {
	ID      string         `json:"id"`
	CallID  string         `json:"callId"`
	AgentID string         `json:"agentId"` // the recorded call's agent (rawId)
	State   RecordingState `json:"state"`
	// File is the WAV file's name in the recordings directory.
	File string `json:"file"`
	// Node is the node whose mixer wrote the file ("" on one node).
	Node string `json:"node,omitempty"`
	// StartedBy is who started it (the agent, a supervisor, or the
	// switchboard for an "always record" queue).
	StartedBy Actor      `json:"startedBy"`
	StartedAt time.Time  `json:"startedAt"`
	StoppedAt *time.Time `json:"stoppedAt,omitempty"`
	// StoppedBy is who stopped it: someone, or the switchboard when the
	// call ended or a crash left it.
	StoppedBy *Actor       `json:"stoppedBy,omitempty"`
	Paused    []PausedSpan `json:"pausedSpans"`
	// DurationMs is the length of the audio written so far (pauses
	// included, as silence).
	DurationMs int64 `json:"durationMs"`
	// DeletedAt is when retention deleted the file; the metadata stays.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// RecordingFilter selects recordings. Zero fields do not filter.
type RecordingFilter struct {
	CallID string
	// Unfinished: not stopped (left by a crash).
	Unfinished bool
	// StoppedBefore: stopped before this time and not deleted (retention).
	StoppedBefore time.Time
	// Node, with Unfinished or StoppedBefore, keeps only the recordings of
	// that node ("" on one node): a node finishes and deletes its own
	// files only.
	Node  string
	Limit int // 0: no limit
}

// Recordings keeps recordings' metadata. Every store implements it and
// passes the shared suite.
type Recordings interface {
	// PutRecording writes r, replacing the recording with its ID.
	PutRecording(ctx context.Context, r Recording) error
	// FindRecordings answers the recordings f selects, oldest start first;
	// never nil on success.
	FindRecordings(ctx context.Context, f RecordingFilter) ([]Recording, error)
}

// Clone copies r deeply.
func (r Recording) Clone() Recording {
	if r.StoppedAt != nil {
		t := *r.StoppedAt
		r.StoppedAt = &t
	}
	r.StoppedBy = cloneActor(r.StoppedBy)
	if r.DeletedAt != nil {
		t := *r.DeletedAt
		r.DeletedAt = &t
	}
	spans := make([]PausedSpan, len(r.Paused))
	for i, s := range r.Paused {
		if s.End != nil {
			t := *s.End
			s.End = &t
		}
		s.PausedBy, s.ResumedBy = cloneActor(s.PausedBy), cloneActor(s.ResumedBy)
		spans[i] = s
	}
	r.Paused = spans
	return r
}

func cloneActor(a *Actor) *Actor {
	if a == nil {
		return nil
	}
	c := *a
	return &c
}

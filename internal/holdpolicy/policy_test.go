package holdpolicy

import (
	"errors"
	"slices"
	"testing"
)

func TestState(t *testing.T) {
	tests := []struct {
		call Call
		want State
	}{
		{Call{}, Pending},
		{Call{Live: true}, Connected},
		{Call{Live: true, HeldByAgent: true}, LocalHold},
		{Call{Live: true, HeldByRemote: true}, RemoteHold},
		{Call{Live: true, HeldByAgent: true, HeldByRemote: true}, LocalHold},
		{Call{Live: true, Ended: true}, Ended},
		{Call{Ended: true}, Ended},
	}
	for _, tt := range tests {
		if got := tt.call.State(); got != tt.want {
			t.Errorf("%+v.State() = %s, want %s", tt.call, got, tt.want)
		}
	}
}

func TestPlan(t *testing.T) {
	var (
		pending    = Call{ID: "p"}
		active     = Call{ID: "a", Live: true}
		held       = Call{ID: "h", Live: true, HeldByAgent: true, HeldSeq: 1}
		held2      = Call{ID: "h2", Live: true, HeldByAgent: true, HeldSeq: 2}
		remoteHeld = Call{ID: "r", Live: true, HeldByRemote: true}
		bothHeld   = Call{ID: "b", Live: true, HeldByAgent: true, HeldByRemote: true, HeldSeq: 3}
		ended      = Call{ID: "e", Live: true, Ended: true}
	)
	hold := func(id string) Transition { return Transition{CallID: id, Hold: true} }
	release := func(id string) Transition { return Transition{CallID: id, Hold: false} }

	tests := []struct {
		name   string
		calls  []Call
		action Action
		id     string
		opt    Options
		want   []Transition
		err    error
	}{
		{"start holds the active call", []Call{active, held, pending}, Start, "p", Options{}, []Transition{hold("a")}, nil},
		{"start with nothing active", []Call{held, pending}, Start, "p", Options{}, nil, nil},
		{"join holds the active call", []Call{active, pending}, Join, "p", Options{}, []Transition{hold("a")}, nil},
		{"accept holds the active call", []Call{pending, active}, Accept, "p", Options{}, []Transition{hold("a")}, nil},
		{"accept twice", []Call{active}, Accept, "a", Options{}, nil, ErrInvalidState},
		{"start a live call", []Call{held}, Start, "h", Options{}, nil, ErrInvalidState},
		{"resume holds the active call first", []Call{active, held}, Resume, "h", Options{}, []Transition{hold("a"), release("h")}, nil},
		{"resume with nothing active", []Call{held, remoteHeld}, Resume, "h", Options{}, []Transition{release("h")}, nil},
		{"resume a call both sides hold", []Call{active, bothHeld}, Resume, "b", Options{}, []Transition{hold("a"), release("b")}, nil},
		{"resume a Connected call", []Call{active}, Resume, "a", Options{}, nil, ErrInvalidState},
		{"resume a remotely held call", []Call{remoteHeld}, Resume, "r", Options{}, nil, ErrInvalidState},
		{"resume a pending call", []Call{pending}, Resume, "p", Options{}, nil, ErrInvalidState},
		{"resume an ended call", []Call{ended}, Resume, "e", Options{}, nil, ErrInvalidState},
		{"hold the active call", []Call{active, held}, Hold, "a", Options{}, []Transition{hold("a")}, nil},
		{"hold a remotely held call", []Call{remoteHeld}, Hold, "r", Options{}, []Transition{hold("r")}, nil},
		{"hold twice", []Call{held}, Hold, "h", Options{}, nil, ErrInvalidState},
		{"hold a pending call", []Call{pending}, Hold, "p", Options{}, nil, ErrInvalidState},
		{"remote live while another is active", []Call{active, {ID: "n", Live: true}}, RemoteLive, "n", Options{}, []Transition{hold("n")}, nil},
		{"remote live with nothing active", []Call{held, {ID: "n", Live: true}}, RemoteLive, "n", Options{}, nil, nil},
		{"remote live on a held call", []Call{held}, RemoteLive, "h", Options{}, nil, ErrInvalidState},
		{"end the active call resumes nothing", []Call{active, held}, End, "a", Options{}, nil, nil},
		{"end the active call resumes the last held", []Call{active, held, held2, remoteHeld}, End, "a", Options{ResumeLastHeld: true}, []Transition{release("h2")}, nil},
		{"end a held call resumes nothing", []Call{held, held2}, End, "h", Options{ResumeLastHeld: true}, nil, nil},
		{"end the active call with none held", []Call{active, remoteHeld}, End, "a", Options{ResumeLastHeld: true}, nil, nil},
		{"end twice", []Call{ended}, End, "e", Options{}, nil, ErrInvalidState},
		{"unknown call", []Call{active}, Hold, "x", Options{}, nil, ErrUnknownCall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Plan(tt.calls, tt.action, tt.id, tt.opt)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Plan() error = %v, want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Plan() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlanUnknownAction(t *testing.T) {
	if _, err := Plan([]Call{{ID: "a"}}, Action(99), "a", Options{}); err == nil {
		t.Fatal("Plan(unknown action) returned no error")
	}
}

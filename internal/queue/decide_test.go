package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func cand(agent string, offerable bool, idleMin int, skills map[string]int) Candidate {
	return Candidate{Agent: agent, Offerable: offerable, IdleSince: t0.Add(time.Duration(idleMin) * time.Minute), Skills: skills}
}

func TestPick(t *testing.T) {
	fr := map[string]int{"french": 2}
	cands := []Candidate{
		cand("a", true, 5, nil),
		cand("b", true, 1, fr),
		cand("c", false, 0, fr), // idle longest but not offerable
		cand("d", true, 3, map[string]int{"french": 1}),
	}
	for _, tt := range []struct {
		name     string
		strategy Strategy
		need     map[string]int
		tried    []string
		last     string
		want     string
	}{
		{"longest idle", LongestIdle, nil, nil, "", "b"},
		{"longest idle skips tried", LongestIdle, nil, []string{"b"}, "", "d"},
		{"skills filter first", LongestIdle, fr, nil, "", "b"},
		{"skill level too low", LongestIdle, map[string]int{"french": 3}, nil, "", ""},
		{"unknown skill", LongestIdle, map[string]int{"german": 1}, nil, "", ""},
		{"skills then tried", LongestIdle, fr, []string{"b"}, "", ""},
		{"round robin from the start", RoundRobin, nil, nil, "", "a"},
		{"round robin after last", RoundRobin, nil, nil, "a", "b"},
		{"round robin skips unofferable", RoundRobin, nil, nil, "b", "d"},
		{"round robin wraps", RoundRobin, nil, nil, "d", "a"},
		{"round robin with skills", RoundRobin, map[string]int{"french": 1}, nil, "b", "d"},
		{"round robin unknown last", RoundRobin, nil, nil, "zed", "a"},
		{"nobody", LongestIdle, nil, []string{"a", "b", "d"}, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Pick(tt.strategy, cands, tt.need, tt.tried, tt.last); got != tt.want {
				t.Errorf("Pick = %q, want %q", got, tt.want)
			}
		})
	}
	if got := Pick(RoundRobin, nil, nil, nil, ""); got != "" {
		t.Errorf("Pick of no members = %q", got)
	}
}

func TestNext(t *testing.T) {
	d := &Definition{Name: "support", Strategy: LongestIdle, RingTimeoutSeconds: 10, MaxWaitSeconds: 60}
	over := *d
	over.OverflowQueue = "sales"
	vm := *d
	vm.Voicemail = true
	overVM := over
	overVM.Voicemail = true
	cands := []Candidate{cand("a", true, 2, nil), cand("b", true, 1, nil)}
	entered := t0
	for _, tt := range []struct {
		name  string
		d     *Definition
		w     Waiting
		cands []Candidate
		at    time.Duration
		want  Decision
	}{
		{"offer to the longest idle", d, Waiting{EnteredAt: entered}, cands, 0, Decision{Action: Ring, Agent: "b"}},
		{"ringing holds", d, Waiting{EnteredAt: entered, Offer: &Offer{"b", t0}}, cands, 9 * time.Second, Decision{Action: Hold}},
		{"ring timeout withdraws", d, Waiting{EnteredAt: entered, Offer: &Offer{"b", t0}}, cands, 10 * time.Second, Decision{Action: Withdraw, Agent: "b"}},
		{"after a miss, the next", d, Waiting{EnteredAt: entered, Tried: []string{"b"}}, cands, 11 * time.Second, Decision{Action: Ring, Agent: "a"}},
		{"all tried: start over, not the last", d, Waiting{EnteredAt: entered, Tried: []string{"b", "a"}}, cands, 21 * time.Second, Decision{Action: Ring, Agent: "b"}},
		{"only one: she again", d, Waiting{EnteredAt: entered, Tried: []string{"b"}}, cands[1:], 11 * time.Second, Decision{Action: Ring, Agent: "b"}},
		{"nobody offerable", d, Waiting{EnteredAt: entered}, []Candidate{cand("a", false, 0, nil)}, 0, Decision{Action: Hold}},
		{"max wait ends", d, Waiting{EnteredAt: entered}, nil, 60 * time.Second, Decision{Action: GiveUp, Reason: ReasonMaxWait}},
		{"max wait withdraws the offer", d, Waiting{EnteredAt: entered, Offer: &Offer{"a", t0}}, cands, 61 * time.Second, Decision{Action: GiveUp, Reason: ReasonMaxWait, Agent: "a"}},
		{"max wait overflows", &over, Waiting{EnteredAt: entered}, cands, 60 * time.Second, Decision{Action: Overflow, Queue: "sales"}},
		{"max wait to voicemail", &vm, Waiting{EnteredAt: entered}, nil, 60 * time.Second, Decision{Action: Voicemail, Reason: ReasonVoicemail}},
		{"voicemail withdraws the offer", &vm, Waiting{EnteredAt: entered, Offer: &Offer{"a", t0}}, cands, 61 * time.Second, Decision{Action: Voicemail, Reason: ReasonVoicemail, Agent: "a"}},
		{"an overflow queue wins over voicemail", &overVM, Waiting{EnteredAt: entered}, cands, 60 * time.Second, Decision{Action: Overflow, Queue: "sales"}},
		{"voicemail waits for max wait", &vm, Waiting{EnteredAt: entered}, []Candidate{cand("a", false, 0, nil)}, 59 * time.Second, Decision{Action: Hold}},
		{"voicemail does not keep an agent from ringing", &vm, Waiting{EnteredAt: entered}, cands, 59 * time.Second, Decision{Action: Ring, Agent: "b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Next(tt.d, &tt.w, tt.cands, "", t0.Add(tt.at)); got != tt.want {
				t.Errorf("Next = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	ok := func() Definition {
		return Definition{Name: "support", Members: []Member{{Agent: "8:acs:alice"}}}
	}
	d := ok()
	if err := d.Normalize(); err != nil {
		t.Fatal(err)
	}
	if d.Strategy != LongestIdle || d.RingTimeoutSeconds != DefaultRingTimeout || d.MaxConcurrentCalls != 1 || d.MaxMisses != DefaultMaxMisses {
		t.Errorf("defaults not filled: %+v", d)
	}
	for _, tt := range []struct {
		name string
		edit func(*Definition)
	}{
		{"empty name", func(d *Definition) { d.Name = "" }},
		{"slash in name", func(d *Definition) { d.Name = "a/b" }},
		{"bad strategy", func(d *Definition) { d.Strategy = "random" }},
		{"phone member", func(d *Definition) { d.Members = []Member{{Agent: "4:+14255550123"}} }},
		{"empty member", func(d *Definition) { d.Members = []Member{{}} }},
		{"twice", func(d *Definition) { d.Members = append(d.Members, d.Members[0]) }},
		{"negative ring timeout", func(d *Definition) { d.RingTimeoutSeconds = -1 }},
		{"overflow into itself", func(d *Definition) { d.OverflowQueue = d.Name }},
		{"negative voicemail", func(d *Definition) { d.Voicemail, d.VoicemailMaxSeconds = true, -1 }},
		{"voicemail too long", func(d *Definition) { d.Voicemail, d.VoicemailMaxSeconds = true, MaxVoicemailMax+1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := ok()
			tt.edit(&d)
			err := d.Normalize()
			var ce *calls.Error
			if !errors.As(err, &ce) || ce.Code != calls.CodeInvalidRequest {
				t.Errorf("Normalize = %v, want invalid_request", err)
			}
		})
	}
}

func TestNormalizeVoicemail(t *testing.T) {
	for _, tt := range []struct {
		name    string
		on      bool
		max     int
		wantMax int
	}{
		{"default", true, 0, DefaultVoicemailMax},
		{"set", true, 30, 30},
		{"the bound", true, MaxVoicemailMax, MaxVoicemailMax},
		{"off drops the max", false, 30, 0},
		{"off", false, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Definition{Name: "support", Voicemail: tt.on, VoicemailMaxSeconds: tt.max}
			if err := d.Normalize(); err != nil {
				t.Fatal(err)
			}
			if d.Voicemail != tt.on || d.VoicemailMaxSeconds != tt.wantMax {
				t.Errorf("voicemail %v, max %d; want %v, %d", d.Voicemail, d.VoicemailMaxSeconds, tt.on, tt.wantMax)
			}
		})
	}
}

func TestCompute(t *testing.T) {
	d := &Definition{Name: "q", ServiceLevelSeconds: 20}
	s := Compute(d, Counters{}, nil, t0)
	if s.ServiceLevel != 100 || s.Waiting != 0 {
		t.Errorf("empty stats: %+v", s)
	}
	w := []Waiting{{EnteredAt: t0.Add(-30 * time.Second)}, {EnteredAt: t0.Add(-5 * time.Second)}}
	s = Compute(d, Counters{Answered: 3, AnsweredInSL: 2, Abandoned: 1}, w, t0)
	if s.Waiting != 2 || s.LongestWaitSeconds != 30 || s.ServiceLevel != 50 {
		t.Errorf("stats: %+v", s)
	}
	// A call gone to voicemail left the queue unanswered.
	s = Compute(d, Counters{Answered: 3, AnsweredInSL: 2, Abandoned: 1, Voicemails: 4}, nil, t0)
	if s.Voicemails != 4 || s.ServiceLevel != 25 {
		t.Errorf("stats with voicemails: %+v", s)
	}
}

func TestTracker(t *testing.T) {
	online := map[string]bool{"a": true, "b": true}
	outside := map[string]int{}
	tr := &Tracker{Online: func(a string) bool { return online[a] }, Calls: func(a string) int { return outside[a] }}
	agents := []string{"a", "b", "c"}
	look := func(what string, now time.Time) {
		t.Helper()
		sameLook(t, what, tr, agents, now)
	}
	if !tr.Offerable("a", 1, t0) || tr.Offerable("c", 1, t0) {
		t.Fatal("online agents are offerable, offline ones are not")
	}
	look("start", t0)
	tr.Answered("a")
	if tr.Offerable("a", 1, t0) || !tr.Offerable("a", 2, t0) {
		t.Error("maxConcurrentCalls not applied")
	}
	look("a answered", t0)
	tr.Ended("a", t0, 30*time.Second)
	if tr.Offerable("a", 1, t0.Add(29*time.Second)) || !tr.Offerable("a", 1, t0.Add(30*time.Second)) {
		t.Error("wrap-up not applied")
	}
	look("a in wrap-up", t0.Add(29*time.Second))
	look("a after wrap-up", t0.Add(30*time.Second))
	if !tr.IdleSince("a").Equal(t0) {
		t.Error("idle since not recorded")
	}
	tr.MarkAway("b")
	if tr.Offerable("b", 1, t0) || !tr.Away("b") {
		t.Error("away agent offerable")
	}
	look("b away", t0)
	tr.SetAvailable("b", t0)
	if !tr.Offerable("b", 1, t0) {
		t.Error("available again not offerable")
	}
	outside["b"] = 1
	if tr.Offerable("b", 1, t0) || !tr.Offerable("b", 2, t0) {
		t.Error("a call outside queues not counted")
	}
	look("b on a call outside queues", t0)
}

package routing

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	for _, s := range []string{"Available", "Away", "WrapUp", "Busy", "Offline"} {
		if got, err := Parse(s); err != nil || string(got) != s {
			t.Errorf("Parse(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "available", "Lunch", "Available "} {
		if _, err := Parse(s); !errors.Is(err, ErrUnknownStatus) {
			t.Errorf("Parse(%q): %v, want ErrUnknownStatus", s, err)
		}
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name   string
		to     Status
		wrapUp time.Duration
		want   State
		err    error
	}{
		{name: "available", to: Available, want: State{Status: Available, Since: t0, By: "8:acs:a"}},
		{name: "away", to: Away, want: State{Status: Away, Since: t0, By: "8:acs:a"}},
		{name: "wrap-up default", to: WrapUp, want: State{Status: WrapUp, Since: t0, By: "8:acs:a", WrapUpUntil: t0.Add(DefaultWrapUp), WrapUpCallID: "c1"}},
		{name: "wrap-up 5 s", to: WrapUp, wrapUp: 5 * time.Second, want: State{Status: WrapUp, Since: t0, By: "8:acs:a", WrapUpUntil: t0.Add(5 * time.Second), WrapUpCallID: "c1"}},
		{name: "wrap-up too long", to: WrapUp, wrapUp: MaxWrapUp + time.Second, err: ErrWrapUpTime},
		{name: "wrap-up too short", to: WrapUp, wrapUp: time.Millisecond, err: ErrWrapUpTime},
		{name: "busy is derived", to: Busy, err: ErrDerived},
		{name: "offline is derived", to: Offline, err: ErrDerived},
		{name: "unknown", to: "Lunch", err: ErrUnknownStatus},
	}
	before := State{Status: Away, Since: t0.Add(-time.Hour), By: "8:acs:s"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Set(before, tt.to, "8:acs:a", t0, tt.wrapUp, "c1")
			if !errors.Is(err, tt.err) {
				t.Fatalf("Set: %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				if got != before {
					t.Errorf("Set refused but changed the state: %+v", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Set = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWrapUpLifecycle(t *testing.T) {
	st, err := EnterWrapUp(State{}, "call-1", 30, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Chosen() != WrapUp || st.By != "" || st.WrapUpCallID != "call-1" || !st.WrapUpUntil.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("EnterWrapUp = %+v", st)
	}
	if got := Effective(st, true, false); got != WrapUp {
		t.Errorf("Effective during wrap-up = %s, want WrapUp", got)
	}
	if got := Effective(st, true, true); got != Busy {
		t.Errorf("Effective during wrap-up with a call = %s, want Busy", got)
	}
	if got := Effective(st, false, true); got != Offline {
		t.Errorf("Effective without a connection = %s, want Offline", got)
	}
	if _, changed := Expire(st, t0.Add(29*time.Second)); changed {
		t.Error("Expire before the time changed the state")
	}
	after, changed := Expire(st, t0.Add(31*time.Second))
	if !changed || after.Chosen() != Available || !after.Since.Equal(st.WrapUpUntil) || after.By != "" {
		t.Errorf("Expire after the time = %+v, %v; want Available since the end", after, changed)
	}
	if _, changed := Expire(after, t0.Add(time.Hour)); changed {
		t.Error("Expire of Available changed it")
	}
	// The agent chooses another status before the time is up: no expiry.
	away, _ := Set(st, Away, "8:acs:a", t0.Add(time.Second), 0, "")
	if _, changed := Expire(away, t0.Add(time.Minute)); changed {
		t.Error("Expire of Away changed it")
	}
}

func TestEnterWrapUp(t *testing.T) {
	away := State{Status: Away, Since: t0, By: "8:acs:a"}
	if got, err := EnterWrapUp(away, "c", 30, t0.Add(time.Second)); err != nil || got != away {
		t.Errorf("EnterWrapUp of an Away agent = %+v, %v; want her Away kept", got, err)
	}
	avail := State{Status: Available, Since: t0}
	if got, err := EnterWrapUp(avail, "c", 0, t0.Add(time.Second)); err != nil || got != avail {
		t.Errorf("EnterWrapUp with 0 seconds = %+v, %v; want no change", got, err)
	}
	for _, s := range []int{-1, int(MaxWrapUp/time.Second) + 1} {
		if _, err := EnterWrapUp(avail, "c", s, t0); !errors.Is(err, ErrWrapUpTime) {
			t.Errorf("EnterWrapUp(%d s): %v, want ErrWrapUpTime", s, err)
		}
	}
}

func TestRestore(t *testing.T) {
	now := t0.Add(time.Hour)
	if got := Restore(Away, t0, "8:acs:s", now); got != (State{Status: Away, Since: t0, By: "8:acs:s"}) {
		t.Errorf("Restore(Away) = %+v", got)
	}
	for _, last := range []Status{Available, WrapUp, ""} {
		if got := Restore(last, t0, "8:acs:a", now); got != (State{Status: Available, Since: now}) {
			t.Errorf("Restore(%q) = %+v, want Available since now", last, got)
		}
	}
}

// FuzzSet: whatever is asked, the state Set answers is a chosen status
// with a consistent wrap-up, or the state it was given.
func FuzzSet(f *testing.F) {
	f.Add("WrapUp", int64(5))
	f.Add("Busy", int64(0))
	f.Fuzz(func(t *testing.T, to string, secs int64) {
		before := State{Status: Away, Since: t0}
		got, err := Set(before, Status(to), "x", t0, time.Duration(secs)*time.Second, "c")
		if err != nil {
			if got != before {
				t.Fatalf("refused Set changed the state")
			}
			return
		}
		if !got.Chosen().Chosen() {
			t.Fatalf("Set answered %q", got.Status)
		}
		if (got.Status == WrapUp) != !got.WrapUpUntil.IsZero() {
			t.Fatalf("wrap-up end %v with status %s", got.WrapUpUntil, got.Status)
		}
	})
}

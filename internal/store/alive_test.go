package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// aliveCase is one alive mark a crash may leave.
type aliveCase struct {
	name    string
	mark    func(t *testing.T, path string, beat time.Time)
	liveEnd func(beat time.Time) time.Time
}

// aliveCases are the alive marks a crash may leave, for the recovery
// tests of both stores: each sets the mark at path for a crash whose
// database heartbeat is at beat, and says when a call live at the crash
// ends.
var aliveCases = []aliveCase{
	{
		name:    "no alive mark: the heartbeat dates the crash",
		mark:    func(t *testing.T, path string, _ time.Time) { removeAlive(t, path) },
		liveEnd: func(beat time.Time) time.Time { return beat },
	},
	{
		name: "alive mark after the heartbeat: the mark dates it",
		mark: func(t *testing.T, path string, beat time.Time) {
			writeAliveMark(t, path, beat.Add(90*time.Second+123*time.Microsecond))
		},
		liveEnd: func(beat time.Time) time.Time { return beat.Add(90*time.Second + 123*time.Microsecond) },
	},
	{
		name: "alive mark before the heartbeat: the heartbeat",
		mark: func(t *testing.T, path string, beat time.Time) {
			writeAliveMark(t, path, beat.Add(-time.Minute))
		},
		liveEnd: func(beat time.Time) time.Time { return beat },
	},
	{
		name: "damaged alive mark: ignored",
		mark: func(t *testing.T, path string, _ time.Time) {
			if err := os.WriteFile(path, []byte("not a time, 12"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		liveEnd: func(beat time.Time) time.Time { return beat },
	},
}

func removeAlive(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

func writeAliveMark(t *testing.T, path string, at time.Time) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	a := &aliveMark{path: path, f: f}
	if err := a.write(at); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestAliveMark: a running store rewrites its mark, which reads back as a
// recent time; after close it stays, and stops moving.
func TestAliveMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), aliveFile)
	if got, err := readAlive(path); err != nil || !got.IsZero() {
		t.Fatalf("no mark reads %v, %v; want zero, nil", got, err)
	}
	start := time.Now()
	a, err := startAlive(path, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := readAlive(path)
	if first.Before(start.Add(-time.Second)) {
		t.Fatalf("the mark after start = %v, want about %v", first, start)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := readAlive(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.After(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mark did not move from %v in 10 s", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	last, _ := readAlive(path)
	time.Sleep(3 * aliveEvery)
	if got, _ := readAlive(path); !got.Equal(last) {
		t.Errorf("the mark moved after close: %v, then %v", last, got)
	}
}

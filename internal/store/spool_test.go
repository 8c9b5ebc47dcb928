package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mustOpenSpool(t *testing.T, dir string) *spool {
	t.Helper()
	s, err := openSpool(dir, quietLogger())
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

func payloads(n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	return out
}

// readAll reads every unread payload.
func readAll(t *testing.T, s *spool) [][]byte {
	t.Helper()
	got, _, _, err := s.read(s.pending())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return got
}

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, spoolFile)
	s := mustOpenSpool(t, dir)
	if !s.empty() {
		t.Fatalf("a new spool has %d changes, want none", s.unread)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a new spool made a file before anything was appended")
	}
	want := payloads(5)
	if err := s.append(want[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.append(want[3:]); err != nil {
		t.Fatal(err)
	}
	got, ends, gen, err := s.read(2)
	if err != nil || !slices.EqualFunc(got, want[:2], bytes.Equal) {
		t.Fatalf("read(2) = %q, %v; want %q", got, err, want[:2])
	}
	if err := s.consume(gen, ends[1], 2); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); !slices.EqualFunc(got, want[2:], bytes.Equal) {
		t.Errorf("after consuming 2, read = %q, want %q", got, want[2:])
	}

	// Reopened (a restart), the spool has every change in the file: which
	// ones reached Postgres is not kept, and writing them again is harmless.
	s.close()
	s = mustOpenSpool(t, dir)
	if got := readAll(t, s); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("reopened, read = %q, want %q", got, want)
	}
	_, ends, gen, _ = s.read(s.pending())
	if err := s.consume(gen, ends[len(ends)-1], len(ends)); err != nil {
		t.Fatal(err)
	}
	if err := s.removeIfDone(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("spool file once everything is consumed: %v, want it removed", err)
	}
	// And it starts again.
	if err := s.append(want[:1]); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); !slices.EqualFunc(got, want[:1], bytes.Equal) {
		t.Errorf("after starting again, read = %q, want %q", got, want[:1])
	}
}

func TestSpoolDamage(t *testing.T) {
	frame := func(i int) int64 { // where frame i starts, for payloads(n)
		off := int64(len(spoolHeader))
		for _, p := range payloads(i) {
			off += int64(frameHeader + len(p))
		}
		return off
	}
	tests := []struct {
		name   string
		damage func(b []byte) []byte
		want   int // changes kept
	}{
		{"a frame cut short", func(b []byte) []byte { return b[:len(b)-3] }, 3},
		{"a frame header cut short", func(b []byte) []byte { return b[:frame(3)+5] }, 3},
		{"nothing after the header", func(b []byte) []byte { return b[:len(spoolHeader)] }, 0},
		{"a flipped bit in frame 2", func(b []byte) []byte { b[frame(1)+frameHeader+2] ^= 1; return b }, 1},
		{"a zero length", func(b []byte) []byte { copy(b[frame(2):], []byte{0, 0, 0, 0}); return b }, 2},
		{"a huge length", func(b []byte) []byte { copy(b[frame(2):], []byte{0xff, 0xff, 0xff, 0xff}); return b }, 2},
		{"the header cut short", func(b []byte) []byte { return b[:5] }, 0},
		{"an empty file", func(b []byte) []byte { return nil }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpenSpool(t, dir)
			if err := s.append(payloads(4)); err != nil {
				t.Fatal(err)
			}
			s.close()
			path := filepath.Join(dir, spoolFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			s = mustOpenSpool(t, dir)
			if got := readAll(t, s); !slices.EqualFunc(got, payloads(4)[:tt.want], bytes.Equal) {
				t.Errorf("read after damage = %q, want %q", got, payloads(4)[:tt.want])
			}
			// What follows the damage is gone, and appends follow what is kept.
			if err := s.append([][]byte{[]byte(`"next"`)}); err != nil {
				t.Fatal(err)
			}
			s.close()
			s = mustOpenSpool(t, dir)
			if got, want := readAll(t, s), append(payloads(4)[:tt.want], []byte(`"next"`)); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("read after damage and an append = %q, want %q", got, want)
			}
		})
	}
}

func TestSpoolNotOurs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, spoolFile)
	if err := os.WriteFile(path, []byte("somebody else's file, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openSpool(dir, quietLogger()); err == nil {
		t.Fatalf("openSpool over a file that is not a spool = nil error, want one")
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "somebody") {
		t.Errorf("openSpool changed a file that is not a spool")
	}
}

// FuzzSpool checks that any file is opened without panicking, and that what
// opening keeps can be read.
func FuzzSpool(f *testing.F) {
	var good bytes.Buffer
	good.WriteString(spoolHeader)
	for _, p := range payloads(3) {
		good.Write(frameOf(p))
	}
	f.Add(good.Bytes())
	f.Add([]byte(spoolHeader + "\x00\x00\x00\x05abcdhello"))
	f.Add([]byte(spoolHeader))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, spoolFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(dir, quietLogger())
		if err != nil {
			return
		}
		defer s.close()
		if _, _, _, err := s.read(s.pending()); err != nil {
			t.Errorf("read what openSpool kept: %v", err)
		}
	})
}

func frameOf(p []byte) []byte {
	dir, _ := os.MkdirTemp("", "frame")
	defer os.RemoveAll(dir)
	s, _ := openSpool(dir, quietLogger())
	s.append([][]byte{p})
	b, _ := os.ReadFile(s.path)
	s.close()
	return b[len(spoolHeader):]
}

// Every change reads back from a frame of format 2 as it was encoded,
// whatever its optional columns hold.
func TestChangeSpoolRoundTrip(t *testing.T) {
	ended := calls.EndReason{Code: 603, SubCode: 1, Message: "declined \x00 here"}
	odd := newChange(&calls.Record{Call: calls.Call{ID: "odd",
		RemoteParticipants: []calls.Participant{{RawID: "p", DisplayName: "Pea", IsMuted: true, CallEndReason: &ended}}}},
		-5, tBase, quietLogger())
	odd.call.endCode, odd.call.endSubCode, odd.call.endMessage = nil, new(int32), new(string)
	odd.events = []eventRow{{typ: "t", at: tBase}, {typ: "u", at: tBase.Add(time.Microsecond), actor: &calls.Actor{Kind: calls.ActorSystem}, data: []byte(`{}`)}}
	tests := []struct {
		name string
		c    change
	}{{"odd columns", odd}}
	for i, rec := range conversation(3) {
		tests = append(tests, struct {
			name string
			c    change
		}{fmt.Sprintf("conversation %d", i), newChange(&rec, int64(100+i), tBase, quietLogger())})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.c.appendSpoolFrame(nil)
			got, err := changeFromSpool(b)
			if err != nil {
				t.Fatalf("changeFromSpool: %v", err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("through the spool:\n got %+v\nwant %+v", got, tt.c)
			}
			for n := range len(b) {
				if _, err := changeFromSpool(b[:n]); err == nil {
					t.Fatalf("changeFromSpool of its first %d bytes of %d = nil error, want one", n, len(b))
				}
			}
			if _, err := changeFromSpool(append(b, 0)); err == nil {
				t.Errorf("changeFromSpool with a byte too many = nil error, want one")
			}
		})
	}
}

// A spool of format 1 (JSON), as earlier versions wrote it, is still read.
func TestSpoolFormatJSON(t *testing.T) {
	dir := t.TempDir()
	recs := conversation(2)
	var file bytes.Buffer
	file.WriteString("switchboard history spool 1\n")
	var want []change
	for i := range recs {
		c := newChange(&recs[i], int64(100+i), tBase, quietLogger())
		want = append(want, c)
		file.Write(frameOf(spoolPayloadJSON(t, &c)))
	}
	if err := os.WriteFile(filepath.Join(dir, spoolFile), file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpenSpool(t, dir)
	if s.format != spoolFormatJSON || s.unread != len(recs) {
		t.Fatalf("spool of format 1: format %d with %d changes, want %d with %d", s.format, s.unread, spoolFormatJSON, len(recs))
	}
	got, at := decodeSpooled(readAll(t, s), s.format, quietLogger())
	if len(got) != len(want) || len(at) != len(want) {
		t.Fatalf("decoded %d changes, want %d", len(got), len(want))
	}
	for i := range got {
		for k := range got[i].events {
			got[i].events[k].data = compactJSON(t, got[i].events[k].data)
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("change %d from a spool of format 1:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if _, err := changeFromSpoolJSON([]byte(`{"format":"something else/9","callId":"x"}`)); err == nil {
		t.Errorf("changeFromSpoolJSON of another format = nil error, want one")
	}
}

// A spool of a format this version does not know is refused, and left be.
func TestSpoolUnknownFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, spoolFile)
	content := "switchboard history spool 9\n\x00\x00\x00\x01abcdx"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openSpool(dir, quietLogger())
	if err == nil || !strings.Contains(err.Error(), "format this version cannot read") {
		t.Fatalf("openSpool of a spool of format 9 = %v, want an error about its format", err)
	}
	if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("openSpool changed a spool of an unknown format")
	}
}

// FuzzChangeFromSpool checks that no payload makes the decoder panic.
func FuzzChangeFromSpool(f *testing.F) {
	for i, rec := range conversation(2) {
		c := newChange(&rec, int64(i), tBase, quietLogger())
		f.Add(c.appendSpoolFrame(nil))
	}
	f.Add([]byte{frameChange})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := changeFromSpool(b); err == nil {
			if again, err := changeFromSpool(c.appendSpoolFrame(nil)); err != nil || !reflect.DeepEqual(again, c) {
				t.Errorf("a decoded change does not survive a round trip: %v", err)
			}
		}
	})
}

// spoolPayloadJSON is c as a payload of format 1, as earlier versions
// wrote it.
func spoolPayloadJSON(t *testing.T, c *change) []byte {
	t.Helper()
	r := spoolRecord{Format: spoolRecordFormat, CallID: c.call.id, Version: c.version,
		RecordedAt: c.recordedAt, Call: c.call.view, Events: make([]spoolEvent, len(c.events))}
	for i, e := range c.events {
		r.Events[i] = spoolEvent{Type: e.typ, At: e.at, Actor: e.actor, Data: e.data}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compactJSON(t *testing.T, b []byte) []byte {
	if b == nil {
		return nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestJSONForPostgres(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"plain"`, `"plain"`},
		{`"a\u0000b"`, `"a\ufffdb"`},
		{`"\\u0000"`, `"\\u0000"`}, // a backslash, then the text u0000
		{`"\\\u0000"`, `"\\\ufffd"`},
		{`{"k\u0000":"\u0000\u0000"}`, `{"k\ufffd":"\ufffd\ufffd"}`},
		{`"\u00001"`, `"\ufffd1"`},
	}
	for _, tt := range tests {
		if got := string(jsonForPostgres([]byte(tt.in))); got != tt.want {
			t.Errorf("jsonForPostgres(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzJSONForPostgres checks that any string encoding/json writes comes out
// as valid JSON without \u0000, and means the same but for NUL.
func FuzzJSONForPostgres(f *testing.F) {
	for _, s := range []string{"", "a\x00b", `\u0000`, "\\\x00", "\xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, _ := json.Marshal(s)
		out := jsonForPostgres(b)
		if bytes.Contains(out, []byte(`\u0000`)) && !bytes.Contains(out, []byte(`\\u0000`)) {
			t.Errorf("jsonForPostgres(%s) = %s, still with \\u0000", b, out)
		}
		var before, after string
		if err := json.Unmarshal(b, &before); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("jsonForPostgres(%s) = %s, not JSON: %v", b, out, err)
		}
		if want := strings.ReplaceAll(before, "\x00", "\uFFFD"); after != want {
			t.Errorf("jsonForPostgres(%s) means %q, want %q", b, after, want)
		}
	})
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"8:acs:alice", "8:acs:alice"},
		{"a\x00b", "a\uFFFDb"},
		{"bad \xff\xfe utf8", "bad \uFFFD utf8"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The participants' rows: one per party, its latest appearance.
func TestNewPartRows(t *testing.T) {
	left := calls.EndReason{Code: 0, SubCode: 5300, Message: "removed"}
	rows := newPartRows([]calls.Participant{
		{RawID: "a", State: calls.ParticipantDisconnected, CallEndReason: &left},
		{RawID: "b", DisplayName: "Bee", State: calls.ParticipantConnected},
		{RawID: "a", State: calls.ParticipantConnected, IsMuted: true},
	})
	if len(rows) != 2 {
		t.Fatalf("rows = %+v, want 2", rows)
	}
	if a := rows[0]; a.rawID != "a" || a.position != 3 || !a.isMuted || a.endCode != nil {
		t.Errorf("row a = %+v, want its latest appearance (position 3, muted, live)", a)
	}
	if b := rows[1]; b.rawID != "b" || b.position != 2 || b.displayName == nil || *b.displayName != "Bee" {
		t.Errorf("row b = %+v, want position 2, named Bee", b)
	}
}

// TestJournalCutBack: once every change in a journal past spoolResetBytes
// is consumed, the file is cut back to its header and its generation
// changes, so that offsets of the old file no longer apply; appends go on.
func TestJournalCutBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, spoolFile)
	s := mustOpenSpool(t, dir)
	defer s.close()
	big := bytes.Repeat([]byte("x"), 64<<10)
	var all [][]byte
	for range spoolResetBytes/len(big) + 1 {
		all = append(all, big)
	}
	if err := s.append(all); err != nil {
		t.Fatal(err)
	}
	_, ends, gen, err := s.read(len(all))
	if err != nil {
		t.Fatal(err)
	}
	// Consumed but one: the file stays as it is.
	if err := s.consume(gen, ends[len(ends)-2], len(ends)-1); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Size() < spoolResetBytes {
		t.Fatalf("with a change unread the file is %d bytes, want it kept whole", info.Size())
	}
	if err := s.consume(gen, ends[len(ends)-1], 1); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Size() != int64(len(spoolHeader)) {
		t.Fatalf("once all is consumed: %v, size %d; want the header alone (%d bytes)", err, info.Size(), len(spoolHeader))
	}
	if s.generation() == gen {
		t.Errorf("the generation did not change with the cut")
	}
	// An offset of the old file changes nothing.
	if err := s.append(payloads(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.consume(gen, ends[0], 1); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s); !slices.EqualFunc(got, payloads(2), bytes.Equal) {
		t.Errorf("after the cut, read = %q, want %q", got, payloads(2))
	}
	// A small journal, all consumed, is not cut: cutting costs a truncate.
	_, ends, gen, _ = s.read(2)
	if err := s.consume(gen, ends[1], 2); err != nil {
		t.Fatal(err)
	}
	if s.generation() != gen {
		t.Errorf("a small journal was cut back")
	}
}

// Helpers for the tests alone: the store itself appends framed batches
// (appendFramed) and learns generations from appendFramed and read.

// generation is the file's current generation (see consume).
func (s *spool) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// append adds payloads at the end, in order, and returns once they are on
// disk. On an error none of them counts.
func (s *spool) append(payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	var buf []byte
	for _, p := range payloads {
		start := openFrame(&buf)
		buf = append(buf, p...)
		sealFrame(buf, start)
	}
	_, _, err := s.appendFramed(buf, len(payloads))
	return err
}

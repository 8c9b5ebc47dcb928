package store

import (
	"encoding/base64"
	"math"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		id    string
	}{
		{"a call", time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC), "0f8e2c1a-6b7d-4e5f-9a0b-1c2d3e4f5a6b"},
		{"another zone", time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("UTC-8", -8*3600)), "call-1"},
		{"the zero time", time.Time{}, "x"},
		{"before 1970", time.Date(1901, 1, 1, 0, 0, 0, 999_999_999, time.UTC), "call-1"},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "call-1"},
		{"an id with any bytes", time.Unix(0, 0), "ünïcode/?#%\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := positionOf(tt.start, tt.id)
			got, err := decodeCursor(encodeCursor(want))
			if err != nil {
				t.Fatalf("decodeCursor(encodeCursor(%+v)): %v", want, err)
			}
			if got != want {
				t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v", want, got)
			}
		})
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	raw := func(version byte, sec int64, nsec int32, id string) string {
		b := []byte{version}
		for i := 7; i >= 0; i-- {
			b = append(b, byte(uint64(sec)>>(8*i)))
		}
		for i := 3; i >= 0; i-- {
			b = append(b, byte(uint32(nsec)>>(8*i)))
		}
		return base64.RawURLEncoding.EncodeToString(append(b, id...))
	}
	if _, err := decodeCursor(raw(cursorVersion, 1, 2, "ok")); err != nil {
		t.Fatalf("the test's own encoding is rejected: %v", err)
	}
	tests := []struct {
		name   string
		cursor string
	}{
		{"empty id", raw(cursorVersion, 1, 2, "")},
		{"another version", raw(2, 1, 2, "ok")},
		{"nanoseconds too large", raw(cursorVersion, 1, 1e9, "ok")},
		{"negative nanoseconds", raw(cursorVersion, 1, -1, "ok")},
		{"id not UTF-8", raw(cursorVersion, math.MaxInt64, 0, "\xff\xfe")},
		{"id too long", raw(cursorVersion, 1, 2, string(make([]byte, maxCursorID+1)))},
		{"padded", raw(cursorVersion, 1, 2, "ok") + "="},
		{"standard alphabet", "+/+/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodeCursor(tt.cursor)
			if err == nil {
				t.Fatalf("decodeCursor(%q) = %+v, want an error", tt.cursor, p)
			}
			if got, want := calls.ErrorCode(err), calls.CodeInvalidRequest; got != want {
				t.Errorf("decodeCursor(%q) code = %s, want %s", tt.cursor, got, want)
			}
		})
	}
}

// FuzzDecodeCursor checks that decoding never panics and that whatever it
// accepts encodes back to the same position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(positionOf(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), "call-1")))
	f.Add("")
	f.Add("AAAA")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeCursor(s)
		if err != nil {
			if got, want := calls.ErrorCode(err), calls.CodeInvalidRequest; got != want {
				t.Fatalf("decodeCursor(%q) code = %s, want %s", s, got, want)
			}
			return
		}
		again, err := decodeCursor(encodeCursor(p))
		if err != nil || again != p {
			t.Fatalf("decodeCursor(%q) = %+v, which encodes to %+v, %v", s, p, again, err)
		}
	})
}

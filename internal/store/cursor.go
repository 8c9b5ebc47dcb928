package store

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/calls"
)

// position is a call's place in history order: its start time, then its id.
// History is newest first, so a page walks positions from high to low.
// Times are kept as seconds and nanoseconds, not as time.Time, so that
// comparing never depends on monotonic clock readings or locations.
type position struct {
	sec  int64
	nsec int32
	id   string
}

// positionOf is the position of a call that started at start.
func positionOf(start time.Time, id string) position {
	return position{sec: start.Unix(), nsec: int32(start.Nanosecond()), id: id}
}

// compare orders positions by time, then by id (bytewise).
func (p position) compare(q position) int {
	if c := cmp.Compare(p.sec, q.sec); c != 0 {
		return c
	}
	if c := cmp.Compare(p.nsec, q.nsec); c != 0 {
		return c
	}
	return cmp.Compare(p.id, q.id)
}

// A cursor is base64url (no padding) of a version byte, the start time's
// seconds (8 bytes, big-endian, two's complement), its nanoseconds (4 bytes)
// and the id: the position of the last call of the page before.
const (
	cursorVersion = 1
	cursorHeader  = 1 + 8 + 4
	maxCursorID   = 1024
)

var errCursor = errors.New("not a cursor this store issued")

// encodeCursor is the cursor that continues after p.
func encodeCursor(p position) string {
	b := make([]byte, cursorHeader, cursorHeader+len(p.id))
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(p.sec))
	binary.BigEndian.PutUint32(b[9:13], uint32(p.nsec))
	b = append(b, p.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor back. A malformed one is an *calls.Error with
// CodeInvalidRequest.
func decodeCursor(s string) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return position{}, invalidCursor(err)
	}
	if len(b) <= cursorHeader || len(b) > cursorHeader+maxCursorID || b[0] != cursorVersion {
		return position{}, invalidCursor(errCursor)
	}
	p := position{
		sec:  int64(binary.BigEndian.Uint64(b[1:9])),
		nsec: int32(binary.BigEndian.Uint32(b[9:13])),
		id:   string(b[cursorHeader:]),
	}
	if p.nsec < 0 || p.nsec >= 1e9 || !utf8.ValidString(p.id) {
		return position{}, invalidCursor(errCursor)
	}
	return p, nil
}

func invalidCursor(err error) *calls.Error {
	e := calls.Errorf(calls.CodeInvalidRequest, "malformed cursor")
	e.Err = err
	return e
}

// pageLimit is f's page size: calls.DefaultHistoryLimit for 0 or less,
// cut to calls.MaxHistoryLimit. Every store pages history with it.
func pageLimit(f calls.CallFilter) int {
	if f.Limit <= 0 {
		return calls.DefaultHistoryLimit
	}
	return min(f.Limit, calls.MaxHistoryLimit)
}

// cursorAfter is the position f's cursor names, or nil without a cursor.
// A malformed cursor is CodeInvalidRequest.
func cursorAfter(f calls.CallFilter) (*position, error) {
	if f.Cursor == "" {
		return nil, nil
	}
	pos, err := decodeCursor(f.Cursor)
	if err != nil {
		return nil, err
	}
	return &pos, nil
}

// trimPage cuts a page read one call past limit (to learn whether more
// follow) back to limit, and names where the next page starts; last holds
// the position of each item read.
func trimPage(page *calls.CallPage, last []position, limit int) {
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = encodeCursor(last[limit-1])
	}
}

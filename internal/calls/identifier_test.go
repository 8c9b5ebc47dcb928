package calls

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestIdentifierFromJSON(t *testing.T) {
	tests := []struct {
		json    string
		rawID   string // "" when the identifier is refused
		errCode Code
	}{
		{`{"communicationUserId": "alice"}`, "8:acs:alice", ""},
		{`{"communicationUserId": "8:acs:alice"}`, "8:acs:alice", ""},
		// The Calling SDK's samples call the echo bot as a user id.
		{`{"communicationUserId": "8:echo123"}`, EchoBot.RawID(), ""},
		{`{"communicationUserId": "8:orgid:u1"}`, "8:orgid:u1", ""},
		{`{"id": "8:echo123"}`, EchoBot.RawID(), ""},
		{`{"phoneNumber": "+14255550123"}`, "4:+14255550123", ""},
		{`{"phoneNumber": "0800"}`, "", CodeInvalidPhoneNumber},
		{`{"communicationUserId": ""}`, "", CodeInvalidIdentifier},
		{`{"communicationUserId": "8:acs:"}`, "", CodeInvalidIdentifier},
		{`{"communicationUserId": "alice", "phoneNumber": "+14255550123"}`, "", CodeInvalidIdentifier},
		{`"alice"`, "", CodeInvalidIdentifier},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var id Identifier
			err := json.Unmarshal([]byte(tt.json), &id)
			if tt.rawID != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := id.RawID(); got != tt.rawID {
					t.Fatalf("rawId %q, want %q", got, tt.rawID)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.errCode {
				t.Fatalf("got %v, want code %s", err, tt.errCode)
			}
		})
	}
}

package calls

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// IdentifierKind says which of the Calling SDK's identifier shapes an
// Identifier has.
type IdentifierKind int

// The identifier kinds.
const (
	KindUnknown IdentifierKind = iota // {"id": "x"}
	KindCommunicationUser
	KindPhoneNumber
	KindTeamsUser
)

// Teams clouds.
const (
	CloudPublic = "public"
	CloudDoD    = "dod"
	CloudGCCH   = "gcch"
)

const maxIdentifierLen = 256

var (
	phoneNumberPattern = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	guidPattern        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	roomIDPattern      = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// Identifier is one of the Calling SDK's identifiers. Its canonical string
// form is RawID; its JSON form is the SDK's.
type Identifier struct {
	Kind IdentifierKind
	// ID is the user id, the E.164 number, the Teams user id, or, for
	// KindUnknown, the raw id itself.
	ID          string
	IsAnonymous bool   // Teams users only
	Cloud       string // Teams users only: public, dod or gcch
}

// CommunicationUser is the identifier of a Communication Services user.
func CommunicationUser(id string) Identifier {
	return Identifier{Kind: KindCommunicationUser, ID: id}
}

// PhoneNumber is the identifier of a phone number.
func PhoneNumber(e164 string) Identifier { return Identifier{Kind: KindPhoneNumber, ID: e164} }

// TeamsUser is the identifier of a Microsoft 365 user in the public cloud.
func TeamsUser(id string) Identifier {
	return Identifier{Kind: KindTeamsUser, ID: id, Cloud: CloudPublic}
}

// EchoBot is the built-in echo bot's identifier: call it and hear yourself.
var EchoBot = Identifier{Kind: KindUnknown, ID: "8:echo123"}

// RawID is the identifier's canonical string form, used in URLs.
func (id Identifier) RawID() string { return id.rawPrefix() + id.ID }

// rawPrefix is what RawID puts before ID.
func (id Identifier) rawPrefix() string {
	switch id.Kind {
	case KindCommunicationUser:
		return "8:acs:"
	case KindPhoneNumber:
		return "4:"
	case KindTeamsUser:
		if id.IsAnonymous {
			return "8:teamsvisitor:"
		}
		switch id.Cloud {
		case CloudDoD:
			return "8:dod:"
		case CloudGCCH:
			return "8:gcch:"
		}
		return "8:orgid:"
	}
	return ""
}

// appendRawID appends RawID to b.
func (id Identifier) appendRawID(b []byte) []byte {
	return append(append(b, id.rawPrefix()...), id.ID...)
}

// hasRawID reports whether raw is the identifier's RawID, without building
// it.
func (id Identifier) hasRawID(raw string) bool {
	prefix := id.rawPrefix()
	return len(raw) == len(prefix)+len(id.ID) && raw[:len(prefix)] == prefix && raw[len(prefix):] == id.ID
}

func (id Identifier) String() string { return id.RawID() }

// ParseRawID turns a rawId back into an Identifier and validates it.
func ParseRawID(raw string) (Identifier, error) {
	var id Identifier
	switch {
	case strings.HasPrefix(raw, "8:acs:"):
		id = CommunicationUser(strings.TrimPrefix(raw, "8:acs:"))
	case strings.HasPrefix(raw, "4:"):
		id = PhoneNumber(strings.TrimPrefix(raw, "4:"))
	case strings.HasPrefix(raw, "8:orgid:"):
		id = TeamsUser(strings.TrimPrefix(raw, "8:orgid:"))
	case strings.HasPrefix(raw, "8:dod:"):
		id = Identifier{Kind: KindTeamsUser, ID: strings.TrimPrefix(raw, "8:dod:"), Cloud: CloudDoD}
	case strings.HasPrefix(raw, "8:gcch:"):
		id = Identifier{Kind: KindTeamsUser, ID: strings.TrimPrefix(raw, "8:gcch:"), Cloud: CloudGCCH}
	case strings.HasPrefix(raw, "8:teamsvisitor:"):
		id = Identifier{Kind: KindTeamsUser, ID: strings.TrimPrefix(raw, "8:teamsvisitor:"), IsAnonymous: true, Cloud: CloudPublic}
	default:
		id = Identifier{Kind: KindUnknown, ID: raw}
	}
	return id, id.Validate()
}

// Validate checks the identifier's shape: a phone number must be E.164 and
// every id must be non-empty printable text of reasonable length. It returns
// an *Error with code invalid_identifier or invalid_phone_number.
func (id Identifier) Validate() error {
	if id.Kind == KindPhoneNumber {
		if !phoneNumberPattern.MatchString(id.ID) {
			return Errorf(CodeInvalidPhoneNumber, "%q is not an E.164 phone number (+ then 2 to 15 digits, the first not 0)", id.ID)
		}
		return nil
	}
	if id.ID == "" {
		return Errorf(CodeInvalidIdentifier, "the identifier is empty")
	}
	if len(id.ID) > maxIdentifierLen {
		return Errorf(CodeInvalidIdentifier, "the identifier is longer than %d bytes", maxIdentifierLen)
	}
	for _, r := range id.ID {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' || r == '?' || r == '#' || r == '%' {
			return Errorf(CodeInvalidIdentifier, "the identifier %q has a space, one of / ? # %% or an unprintable character", id.ID)
		}
	}
	if id.Kind == KindTeamsUser {
		switch id.Cloud {
		case CloudPublic, CloudDoD, CloudGCCH:
		default:
			return Errorf(CodeInvalidIdentifier, "unknown Teams cloud %q (public, dod or gcch)", id.Cloud)
		}
	}
	return nil
}

// identifierJSON is the union of the SDK's identifier shapes.
type identifierJSON struct {
	CommunicationUserID  *string `json:"communicationUserId,omitempty"`
	PhoneNumber          *string `json:"phoneNumber,omitempty"`
	MicrosoftTeamsUserID *string `json:"microsoftTeamsUserId,omitempty"`
	IsAnonymous          *bool   `json:"isAnonymous,omitempty"`
	Cloud                *string `json:"cloud,omitempty"`
	ID                   *string `json:"id,omitempty"`
	RawID                *string `json:"rawId,omitempty"`
}

// MarshalJSON writes the SDK's shape for the identifier's kind, plus rawId.
func (id Identifier) MarshalJSON() ([]byte, error) {
	raw := id.RawID()
	j := identifierJSON{RawID: &raw}
	switch id.Kind {
	case KindCommunicationUser:
		j.CommunicationUserID = &id.ID
	case KindPhoneNumber:
		j.PhoneNumber = &id.ID
	case KindTeamsUser:
		cloud := id.Cloud
		if cloud == "" {
			cloud = CloudPublic
		}
		j.MicrosoftTeamsUserID, j.IsAnonymous, j.Cloud = &id.ID, &id.IsAnonymous, &cloud
	default:
		j.ID = &id.ID
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads any of the SDK's shapes and validates the result; a
// malformed identifier is an *Error (invalid_identifier or
// invalid_phone_number).
func (id *Identifier) UnmarshalJSON(b []byte) error {
	var j identifierJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Errorf(CodeInvalidIdentifier, `an identifier must be an object such as {"communicationUserId": "alice"}`)
	}
	set := 0
	for _, s := range []*string{j.CommunicationUserID, j.PhoneNumber, j.MicrosoftTeamsUserID} {
		if s != nil {
			set++
		}
	}
	if set > 1 {
		return Errorf(CodeInvalidIdentifier, "an identifier has exactly one of communicationUserId, phoneNumber, microsoftTeamsUserId")
	}
	var out Identifier
	switch {
	case j.CommunicationUserID != nil && strings.HasPrefix(*j.CommunicationUserID, "8:"):
		// Already a raw id, as the Calling SDK's samples write the echo
		// bot: {"communicationUserId": "8:echo123"} is 8:echo123.
		return id.parseRaw(*j.CommunicationUserID)
	case j.CommunicationUserID != nil:
		out = CommunicationUser(*j.CommunicationUserID)
	case j.PhoneNumber != nil:
		out = PhoneNumber(*j.PhoneNumber)
	case j.MicrosoftTeamsUserID != nil:
		out = TeamsUser(*j.MicrosoftTeamsUserID)
		if j.Cloud != nil {
			out.Cloud = *j.Cloud
		}
		if j.IsAnonymous != nil {
			out.IsAnonymous = *j.IsAnonymous
		}
	case j.ID != nil:
		return id.parseRaw(*j.ID)
	case j.RawID != nil:
		return id.parseRaw(*j.RawID)
	default:
		return Errorf(CodeInvalidIdentifier, "an identifier needs communicationUserId, phoneNumber, microsoftTeamsUserId or id")
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*id = out
	return nil
}

func (id *Identifier) parseRaw(raw string) error {
	parsed, err := ParseRawID(raw)
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ValidateGroupID checks that a group call id is a GUID (invalid_group_id).
func ValidateGroupID(groupID string) error {
	if !guidPattern.MatchString(groupID) {
		return Errorf(CodeInvalidGroupID, "groupId %q is not a GUID", groupID)
	}
	return nil
}

// ValidateRoomID checks a room id: 1 to 128 letters, digits or ._:-
// (invalid_identifier).
func ValidateRoomID(roomID string) error {
	if !roomIDPattern.MatchString(roomID) {
		return Errorf(CodeInvalidIdentifier, "roomId %q must be 1 to 128 letters, digits or ._:-", roomID)
	}
	return nil
}

func (k IdentifierKind) String() string {
	switch k {
	case KindCommunicationUser:
		return "communicationUser"
	case KindPhoneNumber:
		return "phoneNumber"
	case KindTeamsUser:
		return "microsoftTeamsUser"
	}
	return fmt.Sprintf("unknown(%d)", int(k))
}

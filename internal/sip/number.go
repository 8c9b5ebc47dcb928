package sip

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/calls"
)

// e164 reads a phone number as carriers write it in a SIP or tel URI's
// user part: +14255550123, 14255550123, +1-425-555-0123, with or without
// URI parameters. It answers the E.164 form, or false.
func e164(user string) (string, bool) {
	if i := strings.IndexByte(user, ';'); i >= 0 {
		user = user[:i]
	}
	var b strings.Builder
	for i, r := range user {
		switch {
		case r == '+' && i == 0:
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '.' || r == '(' || r == ')' || r == ' ':
		default:
			return "", false
		}
	}
	n := "+" + b.String()
	if calls.ValidatePhoneNumber(n) != nil {
		return "", false
	}
	return n, true
}

// addressNumber reads the phone number and display name of an address
// header's value (From, P-Asserted-Identity): a sip:, sips: or tel: URI,
// in angle brackets or not.
func addressNumber(value string) (number, name string, ok bool) {
	value = strings.TrimSpace(value)
	if i := strings.IndexByte(value, '<'); i >= 0 {
		name = strings.Trim(strings.TrimSpace(value[:i]), `"`)
		if j := strings.IndexByte(value[i:], '>'); j > 0 {
			value = value[i+1 : i+j]
		}
	}
	if rest, found := strings.CutPrefix(strings.ToLower(value), "tel:"); found {
		number, ok = e164(rest)
		return number, name, ok
	}
	var u sip.Uri
	if err := sip.ParseUri(value, &u); err != nil {
		return "", "", false
	}
	number, ok = e164(u.User)
	return number, name, ok
}

// callerOf is who an INVITE is from: P-Asserted-Identity (the first of its
// values with a phone number), else From; false when neither names a
// phone number (an anonymous caller).
func callerOf(req *sip.Request) (calls.CallerInfo, bool) {
	var name string
	if from := req.From(); from != nil {
		name = from.DisplayName
	}
	for _, h := range req.GetHeaders("P-Asserted-Identity") {
		for _, v := range strings.Split(h.Value(), ",") {
			if n, pname, ok := addressNumber(v); ok {
				if pname != "" {
					name = pname
				}
				return calls.CallerInfo{Identifier: calls.PhoneNumber(n), DisplayName: name}, true
			}
		}
	}
	if from := req.From(); from != nil {
		if n, ok := e164(from.Address.User); ok {
			return calls.CallerInfo{Identifier: calls.PhoneNumber(n), DisplayName: name}, true
		}
	}
	return calls.CallerInfo{}, false
}

// calledNumber is the number an INVITE is for: the Request-URI's user part,
// else the To header's.
func calledNumber(req *sip.Request) (string, bool) {
	if n, ok := e164(req.Recipient.User); ok {
		return n, true
	}
	if to := req.To(); to != nil {
		return e164(to.Address.User)
	}
	return "", false
}

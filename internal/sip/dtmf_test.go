package sip

import "testing"

func TestInfoTones(t *testing.T) {
	tests := []struct {
		contentType, body string
		want              string
		ok                bool
	}{
		{"application/dtmf-relay", "Signal=*\r\nDuration=160\r\n", "*", true},
		{"Application/DTMF-Relay; charset=x", "signal = 6\r\n", "6", true},
		{"application/dtmf", "#", "#", true},
		{"application/dtmf-relay", "Duration=160\r\n", "", true},
		{"text/plain", "Signal=1", "", false},
	}
	for _, tt := range tests {
		got, ok := infoTones(tt.contentType, []byte(tt.body))
		if got != tt.want || ok != tt.ok {
			t.Errorf("infoTones(%q, %q) = %q, %v; want %q, %v", tt.contentType, tt.body, got, ok, tt.want, tt.ok)
		}
	}
}

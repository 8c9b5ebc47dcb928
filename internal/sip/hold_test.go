package sip

import "testing"

func TestDirection(t *testing.T) {
	tests := []struct {
		sdp   string
		want  string
		holds bool
	}{
		{"v=0\r\nm=audio 6000 RTP/AVP 0\r\n", "sendrecv", false},
		{"v=0\r\nm=audio 6000 RTP/AVP 0\r\na=sendonly\r\n", "sendonly", true},
		{"v=0\r\na=sendrecv\r\nm=audio 6000 RTP/AVP 0\r\na=inactive\r\n", "inactive", true},
		{"v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n", "inactive", true},
		{"v=0\r\nm=audio 6000 RTP/AVP 0\r\na=recvonly\r\n", "recvonly", false},
	}
	for _, tt := range tests {
		if got := direction([]byte(tt.sdp)); got != tt.want {
			t.Errorf("direction(%q) = %s, want %s", tt.sdp, got, tt.want)
		}
		if got := holds([]byte(tt.sdp)); got != tt.holds {
			t.Errorf("holds(%q) = %v, want %v", tt.sdp, got, tt.holds)
		}
	}

}

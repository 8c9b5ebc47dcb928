package sdpaudio

import (
	"testing"

	"github.com/pion/sdp/v3"
)

func TestPCMUType(t *testing.T) {
	tests := []struct {
		name  string
		media string
		pt    uint8
		ok    bool
	}{
		{"payload 0 without an rtpmap", "m=audio 6000 RTP/AVP 0\r\n", 0, true},
		{"an rtpmap of PCMU/8000", "m=audio 6000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000/1\r\n", 97, true},
		{"the first PCMU wins", "m=audio 6000 RTP/AVP 8 98 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:98 PCMU/8000\r\n", 98, true},
		{"RTP/AVPF", "m=audio 6000 RTP/AVPF 0\r\n", 0, true},
		{"payload 0 mapped to something else", "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMA/8000\r\n", 0, false},
		{"PCMU at 16 kHz", "m=audio 6000 RTP/AVP 97\r\na=rtpmap:97 PCMU/16000\r\n", 0, false},
		{"PCMU in stereo", "m=audio 6000 RTP/AVP 97\r\na=rtpmap:97 PCMU/8000/2\r\n", 0, false},
		{"PCMA only", "m=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n", 0, false},
		{"port 0: refused", "m=audio 0 RTP/AVP 0\r\n", 0, false},
		{"SRTP", "m=audio 6000 RTP/SAVP 0\r\n", 0, false},
		{"video", "m=video 6000 RTP/AVP 0\r\n", 0, false},
		{"a payload type past 127", "m=audio 6000 RTP/AVP 300\r\na=rtpmap:300 PCMU/8000\r\n", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sd sdp.SessionDescription
			if err := sd.Unmarshal([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + tt.media)); err != nil {
				t.Fatal(err)
			}
			pt, ok := PCMUType(sd.MediaDescriptions[0])
			if pt != tt.pt || ok != tt.ok {
				t.Errorf("PCMUType = %d, %v; want %d, %v", pt, ok, tt.pt, tt.ok)
			}
			if Takes(&sd) != tt.ok {
				t.Errorf("Takes = %v, want %v", !tt.ok, tt.ok)
			}
		})
	}
}

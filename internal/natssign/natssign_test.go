package natssign

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestValid(t *testing.T) {
	key, other := []byte("the cluster's key"), []byte("another key")
	signed := func(secret []byte, subject string) *nats.Msg {
		msg := nats.NewMsg(subject)
		msg.Data = []byte(`{"op":"attach"}`)
		Sign(secret, msg)
		return msg
	}
	tests := []struct {
		name   string
		secret []byte
		msg    func() *nats.Msg
		want   bool
	}{
		{"signed with the key", key, func() *nats.Msg { return signed(key, "sb.node.a.http") }, true},
		{"signed with another key", key, func() *nats.Msg { return signed(other, "sb.node.a.http") }, false},
		{"not signed", key, func() *nats.Msg { return signed(nil, "sb.node.a.http") }, false},
		{"a signature that is not hex", key, func() *nats.Msg {
			msg := signed(key, "sb.node.a.http")
			msg.Header.Set(Header, "zz")
			return msg
		}, false},
		{"moved to another subject", key, func() *nats.Msg {
			msg := signed(key, "sb.node.a.http")
			msg.Subject = "sb.node.b.http"
			return msg
		}, false},
		{"data changed", key, func() *nats.Msg {
			msg := signed(key, "sb.node.a.http")
			msg.Data = []byte(`{"op":"detach"}`)
			return msg
		}, false},
		{"no secret: anything", nil, func() *nats.Msg { return signed(nil, "sb.node.a.http") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.secret, tt.msg()); got != tt.want {
				t.Errorf("Valid = %v, want %v", got, tt.want)
			}
		})
	}
}

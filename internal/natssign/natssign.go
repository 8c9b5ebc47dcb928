// Package natssign signs the NATS messages the nodes of a cluster send
// each other, and checks them: an HMAC-SHA256, under a secret the nodes
// share, of the message's subject and data, carried hex-encoded in a
// header. A node refuses what another key signed, what no key signed, and
// a message moved to another subject.
package natssign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"

	"github.com/nats-io/nats.go"
)

// Header carries the signature.
const Header = "Sb-Signature"

// Sum is the hex HMAC-SHA256 of subject, NUL, data under secret.
func Sum(secret []byte, subject string, data []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(subject))
	mac.Write([]byte{0})
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign sets msg's signature of its subject and data, as they are now;
// without a secret it does nothing.
func Sign(secret []byte, msg *nats.Msg) {
	if len(secret) == 0 {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set(Header, Sum(secret, msg.Subject, msg.Data))
}

// Valid says that msg carries the signature of its subject and data under
// secret; without a secret every message is valid.
func Valid(secret []byte, msg *nats.Msg) bool {
	if len(secret) == 0 {
		return true
	}
	got, err := hex.DecodeString(msg.Header.Get(Header))
	if err != nil {
		return false
	}
	want, _ := hex.DecodeString(Sum(secret, msg.Subject, msg.Data))
	return hmac.Equal(got, want)
}

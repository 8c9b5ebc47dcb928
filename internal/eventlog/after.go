package eventlog

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AppendAfter adds payload to identity's events only if last (read with
// Last) is still its last event: it answers an error wrapping
// ErrNotLast, and writes nothing, when another event came after it. It
// does not retry.
func (l *Log) AppendAfter(ctx context.Context, last Entry, payload []byte, opts ...AppendOption) (uint64, error) {
	var o appendOpts
	for _, opt := range opts {
		opt(&o)
	}
	msg := &nats.Msg{Subject: l.Subject(last.Identity), Header: nats.Header{}, Data: payload}
	for k, v := range o.header {
		if k != SeqHeader && k != RunStartHeader && !strings.HasPrefix(k, "Nats-") {
			msg.Header[k] = v
		}
	}
	seq := last.Seq + 1
	msg.Header.Set(SeqHeader, strconv.FormatUint(seq, 10))
	pubOpts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(last.StreamSeq)}
	if o.msgID != "" {
		pubOpts = append(pubOpts, jetstream.WithMsgID(o.msgID))
	}
	c := l.cursorOf(last.Identity)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = false // this process's next Append rereads the last event
	if _, err := l.js.PublishMsg(ctx, msg, pubOpts...); err != nil {
		if wrongLastSeq(err) {
			return 0, fmt.Errorf("eventlog: append to %q after %d: %w", last.Identity, last.Seq, ErrNotLast)
		}
		return 0, fmt.Errorf("eventlog: append to %q after %d: %w", last.Identity, last.Seq, err)
	}
	return seq, nil
}

// ErrNotLast is wrapped by AppendAfter when the event it was given is no
// longer the identity's last.
var ErrNotLast = fmt.Errorf("eventlog: another event came after it")

package eventlog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
)

// rounds is how many times each benchmark's sub-benchmarks alternate.
const rounds = 3

// BenchmarkAppend measures Append against a raw JetStream publish of the
// same payload to the same stream (the baseline), on the shared NATS with
// file storage:
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkAppend -benchtime 5000x ./internal/eventlog/
func BenchmarkAppend(b *testing.B) {
	url := natstest.SharedURL(b)
	_, js := natstest.Connect(b, url)
	ctx := context.Background()
	name := natstest.Name(b, "sbbench_events_")
	b.Cleanup(func() {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			b.Errorf("delete stream: %v", err)
		}
	})
	l, err := eventlog.Open(ctx, js, eventlog.Config{Stream: name, Subject: "sbbench." + name})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"type":"call.held","callId":"c-0123456789","agentId":"agent:alice","at":"2026-12-06T00:00:00Z"}`)

	subject := l.Subject("agent:raw")
	// Warm both paths up, so that the first sub-benchmark does not pay for
	// the new stream's first writes.
	for range 300 {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload}); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(ctx, "agent:alice", payload); err != nil {
			b.Fatal(err)
		}
	}
	// Rounds interleave the two, so that a change in the machine's load
	// falls on both.
	for range rounds {
		b.Run("publish", func(b *testing.B) {
			for b.Loop() {
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("append", func(b *testing.B) {
			for b.Loop() {
				if _, err := l.Append(ctx, "agent:alice", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/store"
)

// BenchmarkForward measures one GET /api/calls of an agent with a live call
// sent to the node that owns her ("direct", the baseline) and to another
// node, which forwards it over NATS ("forwarded"), one request at a time:
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkForward -benchtime 3000x ./cmd/switchboard/
func BenchmarkForward(b *testing.B) {
	url := natstest.SharedURL(b)
	cfg := ClusterConfig{URL: url, LeaseBucket: natstest.Name(b, "sbbench_leases_"),
		SubjectPrefix: natstest.Name(b, "sbbench"), ForwardTimeout: 5 * time.Second}
	b.Cleanup(func() {
		_, js := natstest.Connect(b, url)
		if err := js.DeleteKeyValue(context.Background(), cfg.LeaseBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			b.Errorf("delete bucket: %v", err)
		}
	})
	deleteEventStream(b, url, cfg.SubjectPrefix)
	start := func(id string) *Main {
		c := cfg
		c.NodeID = id
		m := &Main{Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Cluster: c},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Store: store.NewMemory()}
		if err := m.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	owner, entry := start("owner"), start("entry")
	minted, err := api.NewTokens(testAdminKey, nil).Mint(api.TokenRequest{
		Identity: calls.CommunicationUser("alice"), DisplayName: "alice", Role: calls.RoleAgent})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	get := func(m *Main) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m.Addr+"/api/calls", nil)
		req.Header.Set("Authorization", "Bearer "+minted.Token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get(owner) // owner takes alice
	req, _ := http.NewRequest(http.MethodPost, "http://"+owner.Addr+"/api/calls", strings.NewReader(`{"participants":[{"id":"8:echo123"}]}`))
	req.Header.Set("Authorization", "Bearer "+minted.Token)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		b.Fatalf("start a call: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	for range 3 { // rounds interleave the two, so that a change in load falls on both
		b.Run("direct", func(b *testing.B) {
			for b.Loop() {
				get(owner)
			}
		})
		b.Run("forwarded", func(b *testing.B) {
			for b.Loop() {
				get(entry)
			}
		})
	}
}

package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// serveCluster starts node a, a `switchboard serve --cluster` process of
// its own with the node id node, on a fresh Postgres schema (dbURL) and a
// NATS server of the test's own, and waits until it is ready; extra are
// flags of serve's after --data-dir. c, on the same NATS, starts the
// other nodes in process (c.startOn(id, dbURL)).
func serveCluster(t *testing.T, node string, extra ...string) (a *crashServer, c *testCluster, dbURL string) {
	t.Helper()
	dbURL = freshSchema(t)
	natsSrv := natstest.Start(t)
	bin := buildSwitchboard(t)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, extra...)
	a = &crashServer{t: t, bin: bin,
		env:  []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: append(args, "--cluster", natsSrv.URL(), "--node-id", node)}
	a.start()
	c = &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	return a, c, dbURL
}

// terminate sends the switchboard SIGTERM and waits up to 30 s for it to
// exit.
func (s *crashServer) terminate() {
	t := s.t
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30 s of SIGTERM:\n%s", s.log.tail())
	}
}

// Command mediabench measures the media plane: in one run, for each leg
// count, it starts the real `switchboard serve` in its own process and
// `switchboard loadgen` in another, and beside them a baseline that reads
// and writes the same packets on plain UDP sockets with no mixing (its own
// server and client processes, this binary's udp-server and udp-client).
// For each it reads the server process's CPU time from /proc over the
// steady window the load generator announces, and divides it by the
// packets the server received and sent.
//
//	go build -o /tmp/switchboard ./cmd/switchboard
//	go build -o /tmp/mediabench ./cmd/mediabench
//	/tmp/mediabench run --switchboard /tmp/switchboard --legs 250,500,1000
//
// scripts/bench-media does the same.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mediabench run|udp-server|udp-client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "udp-server":
		err = udpServer(ctx, os.Args[2:], os.Stdout)
	case "udp-client":
		err = udpClient(ctx, os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "mediabench:", err)
		os.Exit(1)
	}
}

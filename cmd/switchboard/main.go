// Command switchboard runs Switchboard, the contact-center call
// switchboard, and its helpers:
//
//	switchboard serve     run the service (HTTP API, events, console)
//	switchboard token     mint a token with the admin key
//	switchboard events    print an identity's event stream
//	switchboard migrate   apply the Postgres migrations
//	switchboard healthcheck  ask a switchboard's /healthz (the container's health check)
//	switchboard version   print the version
//
// This package only parses configuration and wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// signalContext is done at the first SIGINT or SIGTERM, which starts a
// graceful shutdown (serve drains); the second ends serve's drain at once
// (endNow), and the third kills the process, whatever the command. Its
// stop function releases the signals and stops the goroutine that counts
// them.
func signalContext() (context.Context, context.CancelFunc) {
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	first, cancelFirst := context.WithCancelCause(context.Background())
	second, cancelSecond := context.WithCancelCause(context.Background())
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; n <= 2; n++ {
			var sig os.Signal
			select {
			case sig = <-sigs:
			case <-quit:
				return
			}
			if n == 1 {
				cancelFirst(fmt.Errorf("signal %v", sig))
				continue
			}
			cancelSecond(fmt.Errorf("a second signal (%v)", sig))
			signal.Stop(sigs) // the third kills the process
		}
	}()
	var once sync.Once
	return context.WithValue(first, endNowKey{}, second), func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
			<-done
			cancelFirst(context.Canceled)
			cancelSecond(context.Canceled)
		})
	}
}

// endNowKey is the context key of signalContext's second signal.
type endNowKey struct{}

// endNow answers a context done at the second SIGINT or SIGTERM of a
// context from signalContext, which ends serve's drain at once; a third
// kills the process. Any other context's is never done.
func endNow(ctx context.Context) context.Context {
	if second, ok := ctx.Value(endNowKey{}).(context.Context); ok {
		return second
	}
	return context.Background()
}

const usage = `usage: switchboard <command> [flags]

commands:
  serve     run the switchboard (HTTP API, websocket events, web console)
  token     mint a token with the admin key (SWITCHBOARD_ADMIN_KEY)
  events    print an identity's live event stream, one JSON message a line
  migrate   apply the Postgres migrations (DATABASE_URL) and exit
  phone     a WebRTC softphone: attach, dial or answer, play a tone or WAV, record
  loadgen   load the media plane with many lightweight WebRTC callers
  healthcheck  ask a switchboard's /healthz; exits 1 unless it answers 200
  version   print the version

Run 'switchboard <command> -h' for a command's flags.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr, getenv)
	case "token":
		err = token(args[1:], stdout, stderr, getenv)
	case "events":
		err = events(ctx, args[1:], stdout, stderr, getenv)
	case "migrate":
		err = migrate(ctx, args[1:], stderr, getenv)
	case "phone":
		err = phoneCmd(ctx, args[1:], stdout, stderr, getenv)
	case "loadgen":
		err = loadgen(ctx, args[1:], stdout, stderr, getenv)
	case "healthcheck":
		err = healthcheck(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "switchboard", buildInfo())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "switchboard:", err)
	return 1
}

// errUsage marks an error the flag package has already explained.
var errUsage = errors.New("usage")

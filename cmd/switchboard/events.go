package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/gorilla/websocket"
)

// events prints an identity's event stream, one JSON message a line, until
// the server closes it or the process is stopped.
func events(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", serverURL(getenv), urlUsage)
	tok := fs.String("token", getenv("SWITCHBOARD_TOKEN"), "the identity's token (env SWITCHBOARD_TOKEN)")
	var ca string
	caCertFlag(fs, &ca, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *tok == "" {
		return errors.New("events needs --token (or SWITCHBOARD_TOKEN)")
	}
	u, err := url.Parse(*base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("--url %q is not an http(s) URL", *base)
	}
	tlsConf, err := clientTLS(ca)
	if err != nil {
		return err
	}
	dialer := *websocket.DefaultDialer
	dialer.TLSClientConfig = tlsConf
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = "/api/events"
	conn, resp, err := dialer.DialContext(ctx, u.String(), http.Header{"Authorization": {"Bearer " + *tok}})
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("open %s: %s %s", u, resp.Status, body)
		}
		return fmt.Errorf("open %s: %w", u, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.As(err, &ce):
				fmt.Fprintf(stderr, "closed by the switchboard: %d %s\n", ce.Code, ce.Text)
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", msg); err != nil {
			return err
		}
	}
}

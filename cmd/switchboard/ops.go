package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/internal/buildinfo"
	"github.com/switchboard/switchboard/internal/metrics"
	"github.com/switchboard/switchboard/internal/store"
)

// Set at link time with -ldflags "-X main.version=... -X main.revision=..."
// (the Dockerfile does, from git); empty values are left to the build's
// VCS info (runtime/debug.ReadBuildInfo).
var (
	version          = ""
	revision         = ""
	revisionTime     = ""
	revisionModified = ""
)

// buildInfo is the running build.
func buildInfo() buildinfo.Info {
	return buildinfo.Read(buildinfo.Stamp{Version: version, Revision: revision, Time: revisionTime, Modified: revisionModified})
}

// OpsConfig is the operations surface's part of serve's configuration.
type OpsConfig struct {
	// MetricsPublic serves GET /metrics without the admin key.
	MetricsPublic bool
	// AccessLog logs every HTTP request.
	AccessLog bool
}

func opsFlags(fs *flag.FlagSet, cfg *OpsConfig, env func(name, def string) string) {
	fs.BoolVar(&cfg.MetricsPublic, "metrics-public", env("SWITCHBOARD_METRICS_PUBLIC", "") == "true", "serve GET /metrics without the admin key (env SWITCHBOARD_METRICS_PUBLIC=true)")
	fs.BoolVar(&cfg.AccessLog, "access-log", env("SWITCHBOARD_ACCESS_LOG", "true") == "true", "log every HTTP request: method, route, status, duration, client, identity (env SWITCHBOARD_ACCESS_LOG=false turns it off)")
}

// newMetrics makes the Prometheus metrics; the media and store figures are
// read at each scrape from what Run has started by then.
func (m *Main) newMetrics(info buildinfo.Info) *metrics.Metrics {
	cfg := metrics.Config{Version: info.Version, Revision: info.Revision}
	cfg.Media = func() metrics.Media {
		var md metrics.Media
		if m.mixer != nil {
			s := m.mixer.Stats()
			md.Ticks, md.LateTicks = s.Ticks, s.Late
		}
		if m.engine != nil {
			s := m.engine.Stats()
			md.LegsOpen, md.LegsOpened = s.Open, s.Opened
			md.DroppedFrames = s.Dropped
			md.PacketsReceived, md.PacketsLost, md.PacketsSent = s.Received, s.Lost, s.Sent
		}
		return md
	}
	if b, ok := m.store.(interface{ Backlog() store.Backlog }); ok {
		cfg.Backlog = func() metrics.Backlog {
			s := b.Backlog()
			return metrics.Backlog{Memory: s.Memory, Spooled: s.Spooled, Journal: s.Journal}
		}
	}
	return metrics.New(cfg)
}

// healthcheck asks a switchboard's /healthz and fails unless it answers
// 200: the container's health check (the image has no curl).
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "http://127.0.0.1:8080/healthz", "the health URL to ask")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *target, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// accessLog is the access log's logger, or nil when it is off.
func accessLog(cfg OpsConfig, log *slog.Logger) *slog.Logger {
	if !cfg.AccessLog {
		return nil
	}
	return log.With("log", "access")
}

// serverURL is the client commands' default --url: SWITCHBOARD_URL, or
// the address serve listens on by default.
func serverURL(getenv func(string) string) string {
	if u := getenv("SWITCHBOARD_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:8080"
}

const urlUsage = "the switchboard's base URL (env SWITCHBOARD_URL)"

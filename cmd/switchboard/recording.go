package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/recording"
)

// RecordingConfig is where recordings go and how long they stay.
type RecordingConfig struct {
	// Dir is the recordings' directory; "" is recordings/ in --data-dir
	// (no recording when both are empty, as in a Main built by a test).
	Dir string
	// Retention, when positive, deletes the files of recordings that
	// stopped longer ago; 0 keeps them.
	Retention time.Duration
}

func recordingFlags(fs *flag.FlagSet, cfg *RecordingConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.Dir, "recording-dir", env("SWITCHBOARD_RECORDING_DIR", ""), "where call recordings (stereo WAV) go; in a cluster, a directory every node shares lets any node serve any recording (env SWITCHBOARD_RECORDING_DIR; default: recordings in --data-dir)")
	retention := fs.String("recording-retention", env("SWITCHBOARD_RECORDING_RETENTION", "0"), "delete the files of recordings that stopped longer ago than this, e.g. 720h; 0 keeps them (env SWITCHBOARD_RECORDING_RETENTION)")
	return func() error {
		d, err := time.ParseDuration(*retention)
		if err != nil || d < 0 {
			return fmt.Errorf("--recording-retention %q is not a duration of 0 or more", *retention)
		}
		cfg.Retention = d
		return nil
	}
}

// startRecording starts the recording service on the store and the mixer,
// and answers the publisher the switchboard is to use (next, wrapped so
// that a call's end stops its recording). Without a directory or a store
// that keeps recordings, nothing records (the routes answer 501).
func (m *Main) startRecording(ctx context.Context, next calls.Publisher) (calls.Publisher, error) {
	dir := m.Config.Recording.Dir
	if dir == "" && m.Config.DataDir != "" {
		dir = filepath.Join(m.Config.DataDir, "recordings")
	}
	recs, ok := m.store.(calls.Recordings)
	if dir == "" || !ok {
		m.Logger.Info("calls are not recorded: no recordings directory, or a store that does not keep recordings")
		return next, nil
	}
	svc, err := recording.New(ctx, recording.Config{
		Dir: dir, Node: m.Config.Cluster.NodeID, Media: m.mixer, Store: recs, Publisher: next,
		NewID: uuid.NewString, Retention: m.Config.Recording.Retention, Logger: m.Logger,
		Calls: recording.CallsFunc(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
			return m.switchboard.GetCall(ctx, p, id)
		}),
	})
	if err != nil {
		return nil, err
	}
	m.recordings = svc
	m.Logger.Info("calls may be recorded", "dir", dir, "retention", m.Config.Recording.Retention)
	return svc.Publisher(next), nil
}

// recorder is the API's view of the recording service (nil: none).
func (m *Main) recorder() api.Recorder {
	if m.recordings == nil {
		return nil
	}
	return m.recordings
}

// stopRecording completes the live recordings and stops the service.
func (m *Main) stopRecording(ctx context.Context) error {
	if m.recordings == nil {
		return nil
	}
	if err := m.recordings.Close(ctx); err != nil {
		return fmt.Errorf("stop recordings: %w", err)
	}
	return nil
}

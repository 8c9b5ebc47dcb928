package recording

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// sweepBatch is how many recordings one query of a sweep deletes.
const sweepBatch = 100

// sweeper runs Sweep every SweepEvery until ctx ends.
func (s *Service) sweeper(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting old recordings", "err", err)
		} else if n > 0 {
			s.log.Info("deleted old recordings", "count", n, "retention", s.cfg.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep deletes the files of the recordings that stopped more than
// Retention ago and marks their metadata deleted; it answers how many. A
// retention of 0 keeps everything.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	if s.cfg.Retention <= 0 {
		return 0, nil
	}
	before := s.cfg.Now().Add(-s.cfg.Retention)
	total := 0
	for {
		old, err := s.cfg.Store.FindRecordings(ctx, calls.RecordingFilter{StoppedBefore: before, Limit: sweepBatch})
		if err != nil {
			return total, fmt.Errorf("sweep recordings: %w", err)
		}
		for _, rec := range old {
			err := os.Remove(s.path(rec))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return total, fmt.Errorf("sweep recordings: %w", err)
			}
			now := s.cfg.Now()
			rec.DeletedAt = &now
			if err := s.cfg.Store.PutRecording(ctx, rec); err != nil {
				return total, fmt.Errorf("sweep recordings: %w", err)
			}
			total++
		}
		if len(old) < sweepBatch {
			return total, nil
		}
	}
}

package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/switchboard/switchboard/internal/eventlog"
)

// EndHeader marks an identity's event in the log that is no event: the
// node that wrote it (NodeHeader) stopped owning the identity after it had
// given her stream exactly the seqs up to this header's value, all of them
// in the log before it. A node that takes the identity over may continue
// her stream from there (RunEnd).
const EndHeader = "Sb-Hub-End"

// EndRuns writes, for each identity and the last seq this node gave her
// stream (runs), an end marker after her last event in the log, when that
// event is this node's with that seq: every event of her stream here is
// then in the log, in order (a lost one shows as a gap there). Call it
// once Close appended what was queued, while this node still holds the
// identities' leases. It answers how many it wrote; an identity whose last
// event is not this node's last (another node wrote since, or an event of
// hers was lost on its way) gets none.
func (r *Relay) EndRuns(ctx context.Context, runs map[string]uint64) (int, error) {
	n := 0
	var errs []error
	for identity, seq := range runs {
		last, ok, err := r.cfg.Log.Last(ctx, identity)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || last.Header.Get(NodeHeader) != r.cfg.Node || hubSeq(last) != seq {
			continue
		}
		_, err = r.cfg.Log.AppendAfter(ctx, last, nil, eventlog.WithHeader(NodeHeader, r.cfg.Node),
			eventlog.WithHeader(EndHeader, strconv.FormatUint(seq, 10)))
		if err != nil && !errors.Is(err, eventlog.ErrNotLast) {
			errs = append(errs, err)
			continue
		}
		if err == nil {
			n++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("relay: end runs: %w", err)
	}
	return n, nil
}

// RunEnd answers the seq identity's stream ended at on the node that last
// owned her, when her last event in the log is that node's end marker
// (EndRuns): her new owner continues her stream after it. ok is false
// when it is not (that node died, or is still giving seqs, or her events
// aged out): her new owner then begins her stream afresh.
func (r *Relay) RunEnd(ctx context.Context, identity string) (seq uint64, ok bool, err error) {
	last, found, err := r.cfg.Log.Last(ctx, identity)
	if err != nil || !found {
		return 0, false, err
	}
	seq, err = strconv.ParseUint(last.Header.Get(EndHeader), 10, 64)
	if err != nil || seq == 0 {
		return 0, false, nil
	}
	return seq, true, nil
}

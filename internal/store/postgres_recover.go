package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// replay writes the changes an earlier run left in the journal, in order,
// then removes it. When Postgres fails it, the spool stays as it is, for
// the next start to replay (writing a change twice changes nothing).
func (p *Postgres) replay(ctx context.Context) error {
	if p.spool.empty() {
		return p.spool.removeIfDone()
	}
	began, total := time.Now(), p.spool.pending()
	for !p.spool.empty() {
		payloads, ends, gen, err := p.spool.read(p.opt.BatchSize)
		if err != nil {
			return fmt.Errorf("replay the spool: %w", err)
		}
		batch, _ := decodeSpooled(payloads, p.spool.payloadFormat(), p.log)
		for i := range batch {
			p.version = max(p.version, batch[i].version)
		}
		if _, err := p.write(ctx, batch); err != nil {
			return fmt.Errorf("replay the spool %s (kept for the next start): %w", p.spool.path, err)
		}
		if err := p.spool.consume(gen, ends[len(ends)-1], len(ends)); err != nil {
			return fmt.Errorf("replay the spool: %w", err)
		}
	}
	if err := p.spool.removeIfDone(); err != nil {
		return fmt.Errorf("replay the spool: %w", err)
	}
	p.log.Info("history store: wrote the changes an earlier run spooled", "changes", total,
		"path", p.spool.path, "duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// RecoverCrashed ends the calls an earlier run left live: the switchboard
// that had them died without ending them. Each gets state Disconnected and
// calls.ReasonSwitchboardDied (503/0), ending when the crash is best known
// to have happened: the later of the earlier run's last sign of life (its heartbeat
// in the database, or its alive mark) and the
// call's last event. Its participants still in it end likewise, and its
// timeline gets a callEnded event caused by the system. It answers how
// many calls it ended, once they are written.
//
// Call it once, after OpenPostgres and before taking calls. It relies on
// one switchboard per database: another one's live calls would look
// crashed. Calls recorded by this store are never touched. Errors: a
// closed store or Postgres out of reach is CodeUnavailable (calls already
// recorded as ended are written later, or spooled).
func (p *Postgres) RecoverCrashed(ctx context.Context) (int, error) {
	const op = "recover crashed calls"
	if err := p.usable(ctx, op); err != nil {
		return 0, err
	}
	rows, err := p.pool.Query(ctx, `
SELECT c.view, (SELECT max(e.at) FROM call_events e WHERE e.call_id = c.id)
FROM calls c
WHERE c.end_time IS NULL AND c.version <= $1
ORDER BY c.start_time, c.id`, p.openVersion)
	if err != nil {
		return 0, dbError(op, err)
	}
	var recs []calls.Record
	for rows.Next() {
		var (
			view []byte
			last *time.Time
		)
		if err := rows.Scan(&view, &last); err != nil {
			rows.Close()
			return 0, dbError(op, err)
		}
		var c calls.Call
		if err := json.Unmarshal(view, &c); err != nil {
			p.log.Error("history store: cannot read a live call to end it", "err", err)
			continue
		}
		recs = append(recs, crashed(c, crashTime(p.lastBeat, last, &c)))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, dbError(op, err)
	}
	p.recoverMu.Lock()
	defer p.recoverMu.Unlock()
	fresh := recs[:0]
	for _, r := range recs {
		if !p.recovered[r.Call.ID] {
			p.recovered[r.Call.ID] = true
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	p.Record(fresh...)
	if err := p.Flush(ctx); err != nil {
		return 0, &calls.Error{Code: calls.CodeUnavailable, Op: op, Message: "the ended calls are not written yet", Err: err}
	}
	p.log.Warn("history store: ended the calls a crash left live", "calls", len(fresh),
		"last_heartbeat", p.lastBeat)
	return len(fresh), nil
}

// crashTime is when a call is best known to have ended in a crash: the
// later of the last heartbeat and the call's last event, and never before
// what the call itself shows.
func crashTime(beat time.Time, lastEvent *time.Time, c *calls.Call) time.Time {
	t := beat
	later := func(u *time.Time) {
		if u != nil && u.After(t) {
			t = *u
		}
	}
	later(lastEvent)
	later(&c.StartTime)
	later(c.ConnectedTime)
	later(c.HeldTime)
	return micro(t).UTC()
}

// crashed is the record that ends c at, as the crash did.
func crashed(c calls.Call, at time.Time) calls.Record {
	reason := calls.ReasonSwitchboardDied
	c.State, c.IsActive = calls.StateDisconnected, false
	c.CallEndReason, c.EndTime = &reason, &at
	var live []calls.Participant
	parts := make([]calls.Participant, len(c.RemoteParticipants))
	for i, pt := range c.RemoteParticipants {
		if pt.CallEndReason == nil {
			r := reason
			pt.State, pt.IsSpeaking, pt.CallEndReason = calls.ParticipantDisconnected, false, &r
			live = append(live, pt)
		}
		parts[i] = pt
	}
	c.RemoteParticipants = parts
	ended := c
	ended.RemoteParticipants = live
	if ended.RemoteParticipants == nil {
		ended.RemoteParticipants = []calls.Participant{}
	}
	return calls.Record{Call: c, Events: []calls.Event{{
		Type:       calls.EventCallEnded,
		At:         at,
		AgentID:    c.AgentID,
		CallID:     c.ID,
		Actor:      &calls.Actor{Kind: calls.ActorSystem},
		Data:       calls.CallEndedData{CallEndReason: reason, Call: ended},
		Supervised: true,
	}}}
}

package audio

import "sync"

// QueueWait is what a caller waiting in a queue hears: the queue music
// (MixerConfig.QueueMusic, a loop every waiting caller shares) and, over
// it, the position prompts Say queues. The mixer plays it to the waiting
// call's identity only while nobody else in the call is live (sends or
// receives): from the tick the answering agent is connected, the caller
// hears her and never the music again, whatever the queue's engine is
// doing. Say may be called from any goroutine.
type QueueWait struct {
	// Silent plays silence in place of the music between prompts (a
	// voicemail's greeting, then nothing while she speaks). Set it
	// before SetQueueWait.
	Silent bool

	mu     sync.Mutex
	prompt *Prompt // playing, in place of the music; nil: the music
	pos    int     // the prompt's next frame
	queued *Prompt // the next prompt, after the one playing
}

// Say plays p in place of the music from the next frame the caller hears
// (after the prompt playing, if any: a newer prompt waiting behind it
// replaces the older).
func (w *QueueWait) Say(p *Prompt) {
	if p == nil || p.Len() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prompt == nil {
		w.prompt, w.pos = p, 0
		return
	}
	w.queued = p
}

// Speaking reports whether a prompt is playing or waiting.
func (w *QueueWait) Speaking() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.prompt != nil
}

// next is the frame the caller hears this tick: the prompt's, or music.
// On the mixer's clock.
func (w *QueueWait) next(music Output) Output {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prompt == nil {
		if w.Silent {
			return Output{PCM: &silence, Ulaw: ulawSilence[:], Source: SourceSilence}
		}
		return music
	}
	f := &w.prompt.frames[w.pos]
	if w.pos++; w.pos == w.prompt.Len() {
		w.prompt, w.pos, w.queued = w.queued, 0, nil
	}
	return Output{PCM: f, Source: SourceHold}
}

// waitRequest is SetQueueWait's request, for the clock.
type waitRequest struct {
	callID string
	wait   *QueueWait // nil: remove
}

// SetQueueWait makes the call callID a waiting call from the next tick on:
// its identity hears w (the queue music and w's prompts) while nobody else
// in the call is live. A nil w makes it an ordinary call again.
func (m *Mixer) SetQueueWait(callID string, w *QueueWait) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waitReqs = append(m.waitReqs, waitRequest{callID: callID, wait: w})
}

// applyWaits takes the waiting calls other goroutines handed over; on the
// clock.
func (m *Mixer) applyWaits() {
	m.mu.Lock()
	reqs := m.waitReqs
	m.waitReqs = nil
	m.mu.Unlock()
	for _, r := range reqs {
		if m.waits == nil {
			m.waits = map[string]*QueueWait{}
		}
		if r.wait == nil {
			delete(m.waits, r.callID)
			continue
		}
		m.waits[r.callID] = r.wait
	}
}

// markWaiting gives every waiting call's identity, alone among the live
// members of its conversation, its QueueWait for this tick. On the clock,
// after the conversations are mixed. It looks at every conversation while
// some call waits (a map read each): the waiting calls are few, the
// conversations of one node a few thousand at most.
func (m *Mixer) markWaiting() {
	if len(m.waits) == 0 {
		return
	}
	for _, c := range m.convs {
		var waiter *member
		live := 0
		for _, mb := range c.members {
			if mb.send || mb.receive {
				live++
			}
			if waiter == nil && mb.id != nil && m.waits[mb.callID] != nil {
				waiter = mb
			}
		}
		if waiter == nil || live > 1 || live == 1 && !waiter.send && !waiter.receive {
			continue
		}
		waiter.id.wait = m.waits[waiter.callID]
	}
}

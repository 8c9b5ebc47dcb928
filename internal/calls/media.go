package calls

import "slices"

// MediaLost ends every call of the identity whose audio endpoint was lost
// past the grace period: its calls end with 410/0, and so do the 1:1 calls'
// other sides; in group calls and rooms the others go on. The media plane
// calls it; an unknown identity or one without calls is a no-op.
func (s *Switchboard) MediaLost(rawID string) {
	if s.isClosed() {
		return
	}
	s.mu.RLock()
	pt := s.parties[rawID]
	s.mu.RUnlock()
	if pt == nil || pt.bot {
		return
	}
	for {
		// Lock the identity's conversations (and so their members) as its
		// snapshot names them; if a call appeared meanwhile, start again.
		var convs []*conversation
		for _, l := range *pt.legsSnap.Load() {
			convs = append(convs, l.conv)
		}
		tx := s.begin(nil, []*party{pt}, convs)
		if slices.ContainsFunc(pt.legs, func(l *leg) bool { return !slices.Contains(tx.convs, l.conv) }) {
			tx.done()
			continue
		}
		for _, l := range slices.Clone(pt.legs) {
			tx.endLeg(l, ReasonMediaLost, ReasonMediaLost)
		}
		tx.after = nil // nothing resumes: the identity has no audio
		tx.done()
		return
	}
}

package calls

// MediaLost ends every call of the identity whose audio endpoint was lost
// past the grace period: its calls end with 410/0, and so do the 1:1 calls'
// other sides; in group calls and rooms the others go on. The media plane
// calls it; an unknown identity or one without calls is a no-op.
func (s *Switchboard) MediaLost(rawID string) {
	tx := s.begin(nil)
	defer tx.done()
	if pt := s.parties[rawID]; pt != nil && !pt.bot && !s.closed {
		tx.endEveryCall(pt, ReasonMediaLost)
	}
}

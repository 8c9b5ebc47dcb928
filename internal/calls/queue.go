package calls

// LiveCalls answers how many calls the identity rawID holds live
// (answered or joined, on hold or not) on this switchboard; ringing ones
// are not counted. Queue routing asks it for "not over
// maxConcurrentCalls".
func (s *Switchboard) LiveCalls(rawID string) int {
	s.live.Lock()
	defer s.live.Unlock()
	pt := s.parties[rawID]
	if pt == nil {
		return 0
	}
	n := 0
	for _, l := range pt.legs {
		if l.phase == phaseLive {
			n++
		}
	}
	return n
}

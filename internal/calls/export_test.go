package calls

// QueueAnswersKept is queueAnswersKept, for the package's external tests.
func QueueAnswersKept(s *Switchboard) int { return s.queueAnswersKept() }

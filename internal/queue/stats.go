package queue

import (
	"math"
	"time"
)

// Counters are what a queue has seen since it was created.
type Counters struct {
	// Answered calls (an agent accepted the offer), of which
	// AnsweredInSL within the queue's ServiceLevelSeconds of entering it.
	Answered     int `json:"answered"`
	AnsweredInSL int `json:"answeredWithinServiceLevel"`
	// Abandoned: the caller hung up while waiting.
	Abandoned int `json:"abandoned"`
	// Overflowed to another queue, TimedOut (ended at max wait with no
	// overflow queue) and Voicemails (left for voicemail at max wait).
	Overflowed int `json:"overflowed"`
	TimedOut   int `json:"timedOut"`
	Voicemails int `json:"voicemails"`
	// Offered counts offers, Missed those that rang out.
	Offered int `json:"offered"`
	Missed  int `json:"missed"`
}

// Stats is GET /api/queues/{name}/stats and the queueStatsChanged event.
type Stats struct {
	Queue string `json:"queue"`
	// Waiting is the number of calls waiting now; LongestWaitSeconds how
	// long the oldest of them has waited.
	Waiting            int     `json:"waiting"`
	LongestWaitSeconds float64 `json:"longestWaitSeconds"`
	Counters
	// ServiceLevelSeconds is the queue's threshold; ServiceLevel the
	// percentage of the calls that left the queue (answered, abandoned,
	// timed out, to voicemail; not overflowed) that were answered within it; 100 when
	// none left yet.
	ServiceLevelSeconds int     `json:"serviceLevelSeconds"`
	ServiceLevel        float64 `json:"serviceLevel"`
}

// Compute answers the stats of d with these counters and waiting calls at
// now.
func Compute(d *Definition, c Counters, waiting []Waiting, now time.Time) Stats {
	var sum Summary
	for _, w := range waiting {
		if sum.Count == 0 || w.EnteredAt.Before(sum.Oldest) {
			sum.Oldest = w.EnteredAt
		}
		sum.Count++
	}
	return ComputeSummary(d, c, sum, now)
}

// ComputeSummary answers the stats of d with these counters and its
// waiting calls' summary at now.
func ComputeSummary(d *Definition, c Counters, waiting Summary, now time.Time) Stats {
	s := Stats{Queue: d.Name, Counters: c, ServiceLevelSeconds: d.ServiceLevelSeconds, ServiceLevel: 100}
	s.Waiting = waiting.Count
	if waiting.Count > 0 {
		if age := now.Sub(waiting.Oldest).Seconds(); age > 0 {
			s.LongestWaitSeconds = math.Round(age*1000) / 1000
		}
	}
	if left := c.Answered + c.Abandoned + c.TimedOut + c.Voicemails; left > 0 {
		s.ServiceLevel = math.Round(float64(c.AnsweredInSL)*10000/float64(left)) / 100
	}
	return s
}

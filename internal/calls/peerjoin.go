package calls

import (
	"context"
	"time"
)

// A join on a node that does not anchor the conversation answers once the
// anchor's first roster came (Config.JoinWait at most): its answer then
// shows the others, as one node's does. The wait costs the join the
// dial's round trip to the anchor and the roster's way back.

// awaitRoster waits for a mirror's first roster (rostered closes) and
// answers the joiner's call as it then stands; call as it was when the
// wait ends without it (ctx done, JoinWait over, or the call ended).
func (s *Switchboard) awaitRoster(ctx context.Context, call Call, rostered <-chan struct{}) Call {
	t := time.NewTimer(s.cfg.JoinWait)
	defer t.Stop()
	select {
	case <-rostered:
	case <-ctx.Done():
		return call
	case <-t.C:
		return call
	}
	s.live.Lock()
	defer s.live.Unlock()
	if l := s.legs[call.ID]; l != nil {
		return l.view(false)
	}
	return call
}

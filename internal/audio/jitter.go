package audio

import "sync"

// jitterRing is how many samples a jitter buffer holds: 512 ms.
const jitterRing = 4096

// JitterBuffer turns an incoming leg's RTP packets, which arrive with
// jitter, out of order or not at all, into a steady 20 ms frame per mixer
// tick. It places samples by RTP timestamp, so any packet duration works,
// and plays out a target delay behind the newest packet:
//
//   - a late packet (its samples already played) is dropped;
//   - a missing packet plays as silence;
//   - when it runs dry (the sender paused or is slower than the mixer) it
//     plays silence until it holds the target delay again;
//   - when it holds more than the target plus a margin (a burst, or a
//     sender faster than the mixer) it skips a frame to catch up;
//   - a timestamp jump beyond its size (a new stream) resynchronises it.
//
// Push and Pop may run on different goroutines.
type JitterBuffer struct {
	mu       sync.Mutex
	target   uint32           // samples of delay to build
	samples  [jitterRing]byte // µ-law, as it came: half the memory of PCM
	valid    ringBits         // which samples hold audio
	playout  uint32           // RTP timestamp of the next sample to play
	newest   uint32           // RTP timestamp just past the newest sample
	started  bool
	rebuffer bool
	stats    JitterStats
}

// JitterStats counts what a jitter buffer did.
type JitterStats struct {
	Packets   uint64 // pushed and placed
	Late      uint64 // arrived after their time to play
	Skipped   uint64 // frames dropped to catch up
	Underruns uint64 // frames played with no sample at all
	Resyncs   uint64 // timestamp jumps that restarted the buffer
}

// ringBits is one bit per sample of the ring: an eighth of the memory of
// a bool each, with a jitter buffer per leg.
type ringBits [jitterRing / 64]uint64

func (b *ringBits) set(k uint32) { b[k/64] |= 1 << (k % 64) }

// take clears bit k and tells whether it was set.
func (b *ringBits) take(k uint32) bool {
	w, bit := &b[k/64], uint64(1)<<(k%64)
	was := *w&bit != 0
	*w &^= bit
	return was
}

// NewJitterBuffer makes a buffer that plays targetFrames frames behind the
// newest packet (at least 1).
func NewJitterBuffer(targetFrames int) *JitterBuffer {
	targetFrames = max(targetFrames, 1)
	return &JitterBuffer{target: uint32(targetFrames * FrameSamples)}
}

// PushUlaw places one packet of µ-law samples that starts at RTP timestamp
// ts.
func (j *JitterBuffer) PushUlaw(ts uint32, payload []byte) {
	if len(payload) == 0 {
		return
	}
	if len(payload) > jitterRing/2 {
		payload = payload[:jitterRing/2]
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.started:
		j.restart(ts)
	case j.rebuffer && int32(ts-j.target-j.playout) > 0:
		// Back after a pause: play the target delay behind this packet
		// rather than the pause's silence (never backwards, though).
		j.playout = ts - j.target
	}
	ahead := int32(ts - j.playout)
	end := ahead + int32(len(payload))
	switch {
	case end <= 0:
		j.stats.Late++
		return
	case end > jitterRing || ahead < -jitterRing:
		j.stats.Resyncs++
		j.clear()
		j.restart(ts)
		ahead = int32(j.target)
	}
	for i, b := range payload {
		if int32(i)+ahead < 0 {
			continue // the part of a straddling packet already played
		}
		k := (ts + uint32(i)) % jitterRing
		j.samples[k] = b
		j.valid.set(k)
	}
	if e := ts + uint32(len(payload)); int32(e-j.newest) > 0 {
		j.newest = e
	}
	j.stats.Packets++
}

// restart plays out the target delay behind a packet at ts.
func (j *JitterBuffer) restart(ts uint32) {
	j.playout = ts - j.target
	j.newest = ts
	j.started, j.rebuffer = true, false
}

func (j *JitterBuffer) clear() {
	j.valid = ringBits{}
}

// Pop writes the next frame into f and reports whether it held any sample
// (false: silence, the sender is quiet or gone).
func (j *JitterBuffer) Pop(f *Frame) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.started {
		f.Clear()
		return false
	}
	depth := int32(j.newest - j.playout)
	if depth <= 0 || (j.rebuffer && depth < int32(j.target)) {
		// Dry: wait until the target delay is buffered again rather
		// than play each packet the moment it lands.
		j.rebuffer = true
		j.stats.Underruns++
		f.Clear()
		return false
	}
	j.rebuffer = false
	got := j.take(f)
	// Too far behind the newest packet: skip a frame to catch up.
	if int32(j.newest-j.playout) > int32(j.target)+3*FrameSamples {
		var drop Frame
		j.take(&drop)
		j.stats.Skipped++
	}
	if !got {
		j.stats.Underruns++
	}
	return got
}

// take moves one frame out of the ring at the playout point.
func (j *JitterBuffer) take(f *Frame) bool {
	got := false
	for i := range f {
		k := (j.playout + uint32(i)) % jitterRing
		if j.valid.take(k) {
			f[i], got = ulawDecode[j.samples[k]], true
		} else {
			f[i] = 0
		}
	}
	j.playout += FrameSamples
	return got
}

// Stats returns the counts so far.
func (j *JitterBuffer) Stats() JitterStats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stats
}

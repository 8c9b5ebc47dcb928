package portaudio

import "sync"

// ring is a FIFO of mono samples between PortAudio's callback and the
// mixer's goroutine: one side writes, the other reads, each holding mu for
// one copy. A write into a full ring drops the oldest samples. A read that
// finds too few samples takes what is there and stops the ring until it
// holds prime samples again (the reader gets nothing meanwhile), so that a
// reader and a writer on two jittery clocks keep a margin between them.
type ring struct {
	mu     sync.Mutex
	buf    []int16
	r, n   int // where the oldest sample is, how many there are
	prime  int // how many samples a stopped ring waits for
	primed bool
}

func newRing(capacity, prime int) *ring {
	return &ring{buf: make([]int16, capacity), prime: min(prime, capacity)}
}

// write appends the mono mix of the interleaved frames in p (ch channels)
// and reports how many of the oldest samples it dropped to make room.
func (q *ring) write(p []int16, ch int) (dropped int) {
	frames := len(p) / ch
	q.mu.Lock()
	defer q.mu.Unlock()
	c := len(q.buf)
	if frames > c { // only the newest capacity's worth can stay
		dropped = frames - c
		p = p[dropped*ch:]
		frames = c
	}
	if over := q.n + frames - c; over > 0 {
		q.r = (q.r + over) % c
		q.n -= over
		dropped += over
	}
	w := (q.r + q.n) % c
	if ch == 1 {
		k := copy(q.buf[w:], p)
		copy(q.buf, p[k:])
	} else {
		for i := range frames {
			var s int32
			for _, v := range p[i*ch : i*ch+ch] {
				s += int32(v)
			}
			q.buf[(w+i)%c] = int16(s / int32(ch))
		}
	}
	q.n += frames
	return dropped
}

// read fills the interleaved frames of dst (ch channels) with the oldest
// samples, each copied to every channel, and reports how many frames it
// filled; the caller makes the rest silent. Fewer than len(dst)/ch means
// the ring ran dry (or is waiting to be primed again).
func (q *ring) read(dst []int16, ch int) int {
	frames := len(dst) / ch
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.primed {
		if q.n < q.prime || q.n == 0 {
			return 0
		}
		q.primed = true
	}
	k := min(frames, q.n)
	c := len(q.buf)
	if ch == 1 {
		end := min(q.r+k, c)
		m := copy(dst, q.buf[q.r:end])
		copy(dst[m:k], q.buf)
	} else {
		for i := range k {
			v := q.buf[(q.r+i)%c]
			for j := range ch {
				dst[i*ch+j] = v
			}
		}
	}
	q.r = (q.r + k) % c
	q.n -= k
	if k < frames {
		q.primed = false
	}
	return k
}

// trim drops the oldest samples beyond keep and reports how many.
func (q *ring) trim(keep int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	over := q.n - keep
	if over <= 0 {
		return 0
	}
	q.r = (q.r + over) % len(q.buf)
	q.n -= over
	return over
}

// level is how many samples the ring holds.
func (q *ring) level() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

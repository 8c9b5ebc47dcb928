package recording

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/switchboard/switchboard/internal/audio"
)

// stereoFrame is one tick of a recording: the agent's microphone (left)
// and the rest of the call (right).
type stereoFrame struct {
	left, right audio.Frame
}

// flushEvery is how many frames the writer buffers before it writes them
// and rewrites the header: a killed process loses at most this much (one
// second).
const flushEvery = audio.FramesPerSec

// batchFrames is how many frames the tap hands the writer at once (200
// ms): one wake-up of the writer per batch, not per frame. With 100
// recorded calls a wake-up per frame cost the process about as much CPU
// as the mixer's clock itself (BENCHMARKS.md, "Recording").
const batchFrames = 10

// queueBatches is how many batches the tap holds for a slow disk before
// it drops them (5 s).
const queueBatches = 5 * audio.FramesPerSec / batchFrames

// batch is frames on their way to the writer.
type batch struct {
	frames [batchFrames]stereoFrame
	n      int
}

// recorder is one recording's tap and writer. The mixer's clock hands it
// frames (TapFrame, never blocking); its writer goroutine, which it owns
// and stop ends, puts them on disk.
type recorder struct {
	w    *wavWriter
	log  *slog.Logger
	done chan struct{}

	// voicemail: the call's own microphone (a queue caller's) goes on
	// the right and the left stays silent (no agent), whatever she hears.
	voicemail bool

	mu     sync.Mutex
	paused bool
	closed bool
	cur    *batch // filling
	queue  chan *batch
	free   chan *batch // spent batches, reused

	dropped atomic.Uint64
	err     error // the writer's first error; read after done
}

func newRecorder(w *wavWriter, log *slog.Logger) *recorder {
	r := &recorder{w: w, log: log, done: make(chan struct{}),
		queue: make(chan *batch, queueBatches), free: make(chan *batch, queueBatches)}
	go r.write()
	return r
}

// TapFrame queues one frame; while paused it queues silence in both
// channels, for a voicemail silence on the left and the caller's
// microphone on the right. On the mixer's clock.
func (r *recorder) TapFrame(send, others *audio.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.cur == nil {
		select {
		case r.cur = <-r.free:
		default:
			r.cur = new(batch)
		}
	}
	fr := &r.cur.frames[r.cur.n]
	switch {
	case r.paused:
		fr.left.Clear()
		fr.right.Clear()
	case r.voicemail:
		fr.left.Clear()
		fr.right = *send
	default:
		fr.left, fr.right = *send, *others
	}
	if r.cur.n++; r.cur.n < batchFrames {
		return
	}
	select {
	case r.queue <- r.cur:
	default:
		r.dropped.Add(batchFrames)
	}
	r.cur = nil
}

// setPaused makes the frames from now on silent (or not).
func (r *recorder) setPaused(p bool) {
	r.mu.Lock()
	r.paused = p
	r.mu.Unlock()
}

// stop takes no more frames, waits for the writer to put the queued ones
// on disk and close the file, and answers the audio's length in bytes.
func (r *recorder) stop() (int64, error) {
	r.mu.Lock()
	closing := !r.closed
	r.closed = true
	last := r.cur
	r.cur = nil
	r.mu.Unlock()
	if closing {
		// The tap takes no more frames: the queue is the writer's and
		// ours alone now, and this send may wait for the writer.
		if last != nil && last.n > 0 {
			r.queue <- last
		}
		close(r.queue)
	}
	<-r.done
	if n := r.dropped.Load(); n > 0 {
		r.log.Warn("recording dropped frames: the disk did not keep up", "frames", n)
	}
	return r.w.written, r.err
}

// write puts the queued frames on disk, flushing every flushEvery, until
// stop closes the queue; then it closes the file.
func (r *recorder) write() {
	defer close(r.done)
	unflushed := 0
	for b := range r.queue {
		for i := range b.n {
			r.w.add(&b.frames[i])
		}
		unflushed += b.n
		b.n = 0
		select {
		case r.free <- b:
		default:
		}
		if unflushed >= flushEvery && r.err == nil {
			r.err = r.w.flush()
			unflushed = 0
		}
	}
	if err := r.w.close(); r.err == nil {
		r.err = err
	}
}

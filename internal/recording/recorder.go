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

// queueFrames is how many frames the tap holds for a slow disk before it
// drops them (5 s).
const queueFrames = 5 * audio.FramesPerSec

// recorder is one recording's tap and writer. The mixer's clock hands it
// frames (TapFrame, never blocking); its writer goroutine, which it owns
// and stop ends, puts them on disk.
type recorder struct {
	w    *wavWriter
	log  *slog.Logger
	done chan struct{}

	mu     sync.Mutex
	paused bool
	closed bool
	frames chan *stereoFrame
	free   chan *stereoFrame // spent frames, reused

	dropped atomic.Uint64
	err     error // the writer's first error; read after done
}

func newRecorder(w *wavWriter, log *slog.Logger) *recorder {
	r := &recorder{w: w, log: log, done: make(chan struct{}),
		frames: make(chan *stereoFrame, queueFrames), free: make(chan *stereoFrame, queueFrames)}
	go r.write()
	return r
}

// TapFrame queues one frame; while paused it queues silence in both
// channels. On the mixer's clock.
func (r *recorder) TapFrame(send, others *audio.Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	var fr *stereoFrame
	select {
	case fr = <-r.free:
	default:
		fr = new(stereoFrame)
	}
	if r.paused {
		fr.left.Clear()
		fr.right.Clear()
	} else {
		fr.left, fr.right = *send, *others
	}
	select {
	case r.frames <- fr:
	default:
		r.dropped.Add(1)
	}
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
	if !r.closed {
		r.closed = true
		close(r.frames)
	}
	r.mu.Unlock()
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
	n := 0
	for fr := range r.frames {
		r.w.add(fr)
		select {
		case r.free <- fr:
		default:
		}
		if n++; n%flushEvery == 0 && r.err == nil {
			r.err = r.w.flush()
		}
	}
	if err := r.w.close(); r.err == nil {
		r.err = err
	}
}

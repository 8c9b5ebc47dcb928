package rtc

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// outRing is how many frames a leg may have waiting for a writer; a
// fuller ring drops its oldest (the peer sees a sequence gap).
const outRing = 4

// writerIdle is how long a writer goroutine waits for work before it ends.
const writerIdle = 250 * time.Millisecond

// writers take the frames legs Play and send them, so the mixer's clock
// never waits for SRTP or the socket's sendto: Play queues the leg,
// and up to GOMAXPROCS writer goroutines, shared by every leg of an
// engine, drain the queue in parallel. Writers start when there is work
// and end after writerIdle without any, so an engine needs no Close.
//
// A writer holds the engine's batch group (udpbatch) while it has legs to
// write, so what a tick plays leaves shared sockets in batches.
type writers struct {
	queue   chan *Leg
	running atomic.Int32
	max     int32
	batches *udpbatch.Group
}

func newWriters(batches *udpbatch.Group) *writers {
	return &writers{queue: make(chan *Leg, 1<<14), max: int32(max(2, runtime.GOMAXPROCS(0))), batches: batches}
}

// outFrame is one frame waiting to be sent, its RTP header fields fixed
// when it was played so a dropped frame shows as a gap.
type outFrame struct {
	seq     uint16
	ts      uint32
	n       int
	payload [audio.FrameSamples]byte
}

// outQueue is a leg's frames waiting for a writer.
type outQueue struct {
	mu     sync.Mutex
	frames [outRing]outFrame
	head   int  // oldest
	n      int  // waiting
	queued bool // in the writers' queue or being written
}

// enqueue hands l to a writer, starting one if none is free.
func (w *writers) enqueue(l *Leg) bool {
	select {
	case w.queue <- l:
	default:
		return false
	}
	if n := w.running.Load(); n < w.max && w.running.CompareAndSwap(n, n+1) {
		go w.run()
	}
	return true
}

// run writes queued legs until it has been idle for writerIdle.
func (w *writers) run() {
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	var (
		pkt rtp.Packet
		f   outFrame // the frame being sent, here so it is not allocated
	)
	held := false // the batch group, while there are legs to write
	write := func(l *Leg) {
		if !held {
			w.batches.Hold()
			held = true
		}
		l.flush(&pkt, &f)
	}
	for {
		select {
		case l := <-w.queue:
			write(l)
			continue
		default:
		}
		if held {
			w.batches.Release()
			held = false
		}
		idle.Reset(writerIdle)
		select {
		case l := <-w.queue:
			write(l)
		case <-idle.C:
			w.running.Add(-1)
			// A leg queued just as this writer gave up must not wait for
			// the next Play: take the work back if no one else will.
			if len(w.queue) == 0 {
				return
			}
			if n := w.running.Load(); n >= w.max || !w.running.CompareAndSwap(n, n+1) {
				return
			}
		}
	}
}

// play queues one frame of µ-law for the writers.
func (l *Leg) play(ulaw []byte) {
	q := &l.out
	q.mu.Lock()
	if q.n == outRing {
		q.head = (q.head + 1) % outRing
		q.n--
		l.stats.dropped.Add(1)
	}
	f := &q.frames[(q.head+q.n)%outRing]
	q.n++
	f.seq, f.ts, f.n = l.pkt.SequenceNumber, l.pkt.Timestamp, copy(f.payload[:], ulaw)
	l.pkt.SequenceNumber++
	l.pkt.Timestamp += uint32(len(ulaw))
	wake := !q.queued
	q.queued = true
	q.mu.Unlock()
	if wake && !l.writers.enqueue(l) {
		q.mu.Lock()
		l.stats.dropped.Add(uint64(q.n))
		q.n, q.queued = 0, false
		q.mu.Unlock()
	}
}

// flush sends the leg's waiting frames; only one writer holds a leg at a
// time (queued stays set until the ring is empty).
func (l *Leg) flush(pkt *rtp.Packet, f *outFrame) {
	q := &l.out
	for {
		q.mu.Lock()
		if q.n == 0 {
			q.queued = false
			q.mu.Unlock()
			return
		}
		*f = q.frames[q.head]
		q.head = (q.head + 1) % outRing
		q.n--
		q.mu.Unlock()
		pkt.Header = rtp.Header{Version: 2, PayloadType: 0, SSRC: l.local.ssrc, SequenceNumber: f.seq, Timestamp: f.ts}
		pkt.Payload = f.payload[:f.n]
		l.write(pkt)
	}
}

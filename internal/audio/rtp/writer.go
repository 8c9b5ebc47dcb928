package rtp

import "net/netip"

// sendRing is how many packets a leg may have waiting for its writer; a
// fuller ring drops its oldest (the peer sees a sequence gap).
const sendRing = 4

// slotBytes holds the largest packet Play makes: a 12-byte header and 160
// bytes of PCMU (a telephone-event is 16 bytes).
const slotBytes = 12 + 160 + 28

// sendSlot is one packet waiting for the writer, ready to go: marshalled
// and addressed when it was played, so the writer touches nothing else
// of the leg.
type sendSlot struct {
	dest    netip.AddrPort
	n       int // bytes of buf
	payload int // bytes of payload, for the sender report's octet count
	buf     [slotBytes]byte
}

// sendQueue is a leg's packets between Play, on the mixer's clock, and
// the leg's writer goroutine, which makes the system calls. The mixer's
// tick then costs each leg a copy and a lock, never a sendto: a thousand
// legs' sendtos would not fit in a 20 ms tick on one core.
type sendQueue struct {
	slots   [sendRing]sendSlot
	head    int  // the oldest waiting
	n       int  // waiting
	writing bool // the writer holds a packet it took

	sent    sendStats // what the writer sent
	dropped uint64    // packets dropped from a full ring
}

// next returns the slot Play fills for the next packet, dropping the
// oldest waiting when the ring is full; the caller holds sendMu.
func (q *sendQueue) next() *sendSlot {
	if q.n == sendRing {
		q.head = (q.head + 1) % sendRing
		q.n--
		q.dropped++
	}
	return &q.slots[(q.head+q.n)%sendRing]
}

// write sends what Play queued, one packet at a time, until the leg ends.
func (l *Leg) write() {
	defer l.wg.Done()
	var s sendSlot // the packet being sent, copied out so Play can go on
	for {
		select {
		case <-l.ready:
		case <-l.stop:
			return
		}
		for {
			l.sendMu.Lock()
			q := &l.queue
			if q.n == 0 {
				q.writing = false
				l.sendMu.Unlock()
				break
			}
			from := &q.slots[q.head]
			s.dest, s.n, s.payload = from.dest, from.n, from.payload
			copy(s.buf[:s.n], from.buf[:from.n])
			q.head = (q.head + 1) % sendRing
			q.n--
			q.writing = true
			l.sendMu.Unlock()

			_, err := l.rtpConn.WriteToUDPAddrPort(s.buf[:s.n], s.dest)

			l.sendMu.Lock()
			q.writing = false
			if err == nil {
				q.sent.packets++
				q.sent.octets += uint32(s.payload)
			}
			l.sendMu.Unlock()
			if err == nil {
				l.engine.stats.sent.Add(1)
			} else if l.gone.Load() {
				return
			}
		}
	}
}

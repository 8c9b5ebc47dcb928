package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// spool is the Postgres store's journal on local disk: an append-only file
// of every change the store took, written (and fsynced) before the change
// is acknowledged and before it goes to Postgres, so that a crash at any
// moment loses nothing acknowledged. The changes in it not yet in Postgres
// are its unread frames, from off to end, in the order they were taken;
// the writer writes them in that order (from memory while it still holds
// them, else read back from here), and consumes them once they are in
// Postgres. When none is left unread and the file has grown past
// spoolResetBytes, it is cut back to its header; when the store closes
// with none left, the file goes.
//
// The file is a header line, spoolHeader, then one frame per change: the
// payload's length (4 bytes, big-endian), its CRC-32C (4 bytes, big-endian),
// and the payload, one change that carries its own key, so writing it to
// Postgres twice changes nothing. The header's number is the payloads'
// format (see spool_frame.go): a new file is always of format 2 (binary);
// a file of format 1 (JSON), left by an earlier version, is still read. An
// append counts once it is fsynced. A frame cut short by a crash, or one
// whose checksum fails, ends what can be read: opening the spool truncates
// the file there and logs how much was dropped. How far the file has been
// written to Postgres is kept in memory only: after a restart the whole
// file is written again, which changes nothing.
//
// One goroutine appends (the journaler) while another reads and consumes
// (the writer); mu guards the offsets, and an append writes and fsyncs
// outside it. gen changes whenever the file is replaced (cut back, moved
// aside), so that offsets taken before do not apply to the new one. One
// process uses a spool directory at a time.
type spool struct {
	path string
	log  *slog.Logger

	mu        sync.Mutex
	f         *os.File // nil while there is no file
	end       int64    // end of the last whole frame
	off       int64    // start of the first frame not yet in Postgres
	unread    int      // frames from off to end
	format    int      // of the file's payloads: spoolFormatJSON or spoolFormatBinary
	gen       uint64   // changes when the file is replaced
	appending bool     // an append writes beyond end, outside mu
}

const (
	spoolFile = "history.spool"
	// spoolResetBytes is how large the file grows before, with every
	// change in it written to Postgres, it is cut back to its header.
	spoolResetBytes = 4 << 20
	spoolHeader     = "switchboard history spool 2\n" // format 2; see spoolHeaders
	frameHeader     = 8
	// maxFrame bounds a frame's payload, so that a damaged length never
	// makes the reader allocate gigabytes.
	maxFrame = 64 << 20
)

// spoolHeaders is the header of a file of each format this version reads.
// They have the same length.
var spoolHeaders = map[string]int{
	"switchboard history spool 1\n": spoolFormatJSON,
	spoolHeader:                     spoolFormatBinary,
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errDamagedFrame = errors.New("damaged spool frame")

// openSpool opens the spool in dir, creating dir if needed, and finds the
// changes a previous run left in it.
func openSpool(dir string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	s := &spool{path: filepath.Join(dir, spoolFile), log: log}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s.f = f
	if err := s.scan(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// scan checks the file's header, counts its whole frames and truncates
// whatever follows the last one.
func (s *spool) scan() error {
	info, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	size := info.Size()
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, size), 64<<10)
	head := make([]byte, len(spoolHeader))
	_, err = io.ReadFull(r, head)
	format, known := spoolHeaders[string(head)]
	if err != nil || !known {
		if size < int64(len(spoolHeader)) {
			for h := range spoolHeaders {
				if bytes.HasPrefix([]byte(h), head[:size]) {
					// Created, then cut short before its first frame.
					return s.truncate(0, size)
				}
			}
		}
		if bytes.HasPrefix(head, []byte("switchboard history spool ")) {
			return fmt.Errorf("%s is a switchboard history spool of a format this version cannot read (header %q); a newer version wrote it", s.path, bytes.TrimSpace(head))
		}
		return fmt.Errorf("%s is not a switchboard history spool", s.path)
	}
	s.format = format
	s.off, s.end = int64(len(spoolHeader)), int64(len(spoolHeader))
	for {
		_, n, err := readFrame(r, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.truncate(s.end, size)
		}
		s.end += int64(n)
		s.unread++
	}
	return nil
}

// truncate cuts the file to end, logging what is lost.
func (s *spool) truncate(end, size int64) error {
	if size > end {
		s.log.Error("history spool: dropping a damaged or incomplete tail",
			"path", s.path, "bytes", size-end, "changes_kept", s.unread)
	}
	if err := s.f.Truncate(end); err != nil {
		return fmt.Errorf("truncate spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync spool: %w", err)
	}
	if end == 0 {
		return s.remove()
	}
	return nil
}

// readFrame reads one frame's payload into buf's space, answering the
// payload and the frame's size. It answers io.EOF at a clean end and
// errDamagedFrame (or io.ErrUnexpectedEOF) for a frame it cannot trust.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, int, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n == 0 || n > maxFrame {
		return nil, 0, errDamagedFrame
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, io.ErrUnexpectedEOF
	}
	if crc32.Checksum(buf, crcTable) != binary.BigEndian.Uint32(h[4:8]) {
		return nil, 0, errDamagedFrame
	}
	return buf, frameHeader + int(n), nil
}

// empty reports whether every change in the spool is in Postgres.
func (s *spool) empty() bool { return s.pending() == 0 }

// pending is how many changes in the spool are not yet in Postgres.
func (s *spool) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unread
}

// payloadFormat is the format of the file's payloads.
func (s *spool) payloadFormat() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.format
}

// openFrame starts a frame at the end of *buf, its header to be filled by
// sealFrame once the payload follows it; it answers where the frame starts.
func openFrame(buf *[]byte) int {
	start := len(*buf)
	*buf = append(*buf, make([]byte, frameHeader)...)
	return start
}

// sealFrame fills the header of the frame that starts at start and runs
// to the end of buf.
func sealFrame(buf []byte, start int) {
	payload := buf[start+frameHeader:]
	binary.BigEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, crcTable))
}

// errSpoolReplaced is an append that raced with the file being replaced;
// it did not count, and may be tried again at once.
var errSpoolReplaced = errors.New("the spool file was replaced during the append")

// appendFramed adds n whole frames, buf, at the end and returns once they
// are on disk, answering the offset where buf starts and the file's
// generation, which locate each frame for consume. On an error none of
// them counts. Appends must not run at once.
func (s *spool) appendFramed(buf []byte, n int) (int64, uint64, error) {
	if n == 0 {
		return 0, 0, nil
	}
	s.mu.Lock()
	if s.f == nil {
		if err := s.create(); err != nil {
			s.mu.Unlock()
			return 0, 0, err
		}
	}
	f, start, gen := s.f, s.end, s.gen
	s.appending = true
	s.mu.Unlock()

	_, err := f.WriteAt(buf, start)
	if err == nil {
		err = f.Sync()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.appending = false
	if s.gen != gen {
		return 0, 0, errSpoolReplaced
	}
	if err != nil {
		// Best effort: leave no partial frame for the next append to follow.
		_ = f.Truncate(start)
		return 0, 0, fmt.Errorf("append to spool: %w", err)
	}
	s.end = start + int64(len(buf))
	s.unread += n
	return start, gen, nil
}

// create starts a new spool file. The caller holds mu.
func (s *spool) create() error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create spool: %w", err)
	}
	if _, err := f.Write([]byte(spoolHeader)); err != nil {
		f.Close()
		return fmt.Errorf("create spool: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("create spool: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		f.Close()
		return fmt.Errorf("create spool: %w", err)
	}
	s.f, s.off, s.end, s.unread = f, int64(len(spoolHeader)), int64(len(spoolHeader)), 0
	s.format = spoolFormatBinary
	s.gen++
	return nil
}

// read answers up to limit payloads from the first one not yet in Postgres,
// in order, each one's end offset and the file's generation, to pass to
// consume. A damaged frame (the disk changed under us) is errDamagedFrame.
func (s *spool) read(limit int) ([][]byte, []int64, uint64, error) {
	s.mu.Lock()
	f, off, end, unread, gen := s.f, s.off, s.end, s.unread, s.gen
	s.mu.Unlock()
	if unread == 0 {
		return nil, nil, gen, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, end-off), 64<<10)
	n := min(limit, unread)
	payloads := make([][]byte, 0, n)
	ends := make([]int64, 0, n)
	at := off
	for range n {
		p, size, err := readFrame(r, nil)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, gen, fmt.Errorf("read spool %s at %d: %w", s.path, at, err)
		}
		at += int64(size)
		payloads = append(payloads, p)
		ends = append(ends, at)
	}
	return payloads, ends, gen, nil
}

// consume records that the n oldest changes not yet in Postgres, which end
// at off in generation gen, now are. Offsets of an earlier generation are
// of a file that is gone, and change nothing. When every change is in
// Postgres and the file has grown past spoolResetBytes, it is cut back to
// its header.
func (s *spool) consume(gen uint64, off int64, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen || s.f == nil {
		return nil
	}
	s.off = off
	s.unread = max(0, s.unread-n)
	if s.unread > 0 || s.appending || s.end < spoolResetBytes {
		return nil
	}
	head := int64(len(spoolHeader))
	if err := s.f.Truncate(head); err != nil {
		return fmt.Errorf("cut back the spool: %w", err)
	}
	s.off, s.end = head, head
	s.gen++
	return nil
}

// removeIfDone deletes the file when every change in it is in Postgres.
func (s *spool) removeIfDone() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unread > 0 {
		return nil
	}
	return s.remove()
}

// remove deletes the file, whatever is in it. The caller holds mu, or is
// the only user.
func (s *spool) remove() error {
	if s.f == nil {
		return nil
	}
	s.f.Close()
	s.f, s.off, s.end, s.unread = nil, 0, 0, 0
	s.gen++
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove spool: %w", err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("remove spool: %w", err)
	}
	return nil
}

// quarantine moves a spool that cannot be read aside, for a person to look
// at, and starts afresh. It answers how many changes were in it, unread.
func (s *spool) quarantine() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := s.unread
	aside := fmt.Sprintf("%s.damaged-%d", s.path, time.Now().UnixNano())
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.off, s.end, s.unread = nil, 0, 0, 0
	s.gen++
	if err := os.Rename(s.path, aside); err != nil {
		s.log.Error("history spool: cannot move a damaged spool aside", "path", s.path, "err", err)
		return s.path, lost
	}
	_ = syncDir(filepath.Dir(s.path))
	return aside, lost
}

// close releases the file, leaving it on disk.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// syncDir makes a file's creation or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

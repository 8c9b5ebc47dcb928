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
	"time"
)

// spool is the Postgres store's overflow on local disk: an append-only file
// of changes that did not fit in memory while Postgres was down or slow, or
// that were still waiting when the store closed without reaching Postgres.
// The changes in it are older than those the writer holds in memory (but
// for a batch that failed while the writer spilled newer ones), and are
// written to Postgres first, in file order. Once all of them are, the file
// is removed.
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
// A spool is used by one goroutine at a time: the writer, or OpenPostgres
// and Close before and after it runs. One process uses a spool directory at
// a time.
type spool struct {
	path   string
	log    *slog.Logger
	f      *os.File // nil while there is no file
	end    int64    // end of the last whole frame
	off    int64    // start of the first frame not yet in Postgres
	unread int      // frames from off to end
	format int      // of the file's payloads: spoolFormatJSON or spoolFormatBinary
}

const (
	spoolFile   = "history.spool"
	spoolHeader = "switchboard history spool 2\n" // format 2; see spoolHeaders
	frameHeader = 8
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
func (s *spool) empty() bool { return s.unread == 0 }

// append adds payloads at the end, in order, and returns once they are on
// disk. On an error none of them counts.
func (s *spool) append(payloads [][]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	if s.f == nil {
		if err := s.create(); err != nil {
			return err
		}
	}
	size := 0
	for _, p := range payloads {
		size += frameHeader + len(p)
	}
	buf := make([]byte, 0, size)
	for _, p := range payloads {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(p, crcTable))
		buf = append(buf, p...)
	}
	_, err := s.f.WriteAt(buf, s.end)
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Best effort: leave no partial frame for the next append to follow.
		_ = s.f.Truncate(s.end)
		return fmt.Errorf("append to spool: %w", err)
	}
	s.end += int64(len(buf))
	s.unread += len(payloads)
	return nil
}

// create starts a new spool file.
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
	return nil
}

// read answers up to limit payloads from the first one not yet in Postgres,
// in order, and each one's end offset, to pass to consume. A damaged frame
// (the disk changed under us) is errDamagedFrame.
func (s *spool) read(limit int) ([][]byte, []int64, error) {
	if s.unread == 0 {
		return nil, nil, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, s.off, s.end-s.off), 64<<10)
	n := min(limit, s.unread)
	payloads := make([][]byte, 0, n)
	ends := make([]int64, 0, n)
	end := s.off
	for range n {
		p, size, err := readFrame(r, nil)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, nil, fmt.Errorf("read spool %s at %d: %w", s.path, end, err)
		}
		end += int64(size)
		payloads = append(payloads, p)
		ends = append(ends, end)
	}
	return payloads, ends, nil
}

// consume records that the n changes before off are in Postgres. When that
// is all of them, the file goes.
func (s *spool) consume(off int64, n int) error {
	s.off = off
	s.unread -= n
	if s.unread > 0 {
		return nil
	}
	return s.remove()
}

// remove deletes the file, whatever is in it.
func (s *spool) remove() error {
	if s.f == nil {
		return nil
	}
	s.f.Close()
	s.f, s.off, s.end, s.unread = nil, 0, 0, 0
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
	lost := s.unread
	aside := fmt.Sprintf("%s.damaged-%d", s.path, time.Now().UnixNano())
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.off, s.end, s.unread = nil, 0, 0, 0
	if err := os.Rename(s.path, aside); err != nil {
		s.log.Error("history spool: cannot move a damaged spool aside", "path", s.path, "err", err)
		return s.path, lost
	}
	_ = syncDir(filepath.Dir(s.path))
	return aside, lost
}

// close releases the file, leaving it on disk.
func (s *spool) close() error {
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

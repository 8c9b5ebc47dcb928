package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// aliveMark dates a crash to within aliveEvery: a small file the store
// rewrites every aliveEvery with the time, so that the next start knows
// when the switchboard was last alive even while the database was out of
// reach (its heartbeat row then stops). The file is 12 bytes: the time in
// Unix nanoseconds (8 bytes, big-endian) and their CRC-32C (4 bytes). It
// is not fsynced: a killed process's writes survive in the page cache,
// and after a power cut the database's heartbeat still dates the crash,
// less closely.
type aliveMark struct {
	path string
	f    *os.File
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// aliveEvery is how often the alive mark is rewritten.
const aliveEvery = 100 * time.Millisecond

// aliveFile is the alive mark's name in the Postgres store's spool
// directory; the SQLite store keeps it beside its file, with this suffix.
const aliveFile = "alive"

// readAlive answers the time an alive mark at path holds; zero when there
// is none or it cannot be trusted.
func readAlive(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read alive mark: %w", err)
	}
	if len(b) != 12 || crc32.Checksum(b[:8], crcTable) != binary.BigEndian.Uint32(b[8:]) {
		return time.Time{}, nil
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))).UTC(), nil
}

// startAlive writes the alive mark at path now and every aliveEvery until
// close.
func startAlive(path string, log *slog.Logger) (*aliveMark, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("alive mark: %w", err)
	}
	a := &aliveMark{path: path, f: f, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if err := a.write(time.Now()); err != nil {
		f.Close()
		return nil, err
	}
	go a.run()
	return a, nil
}

func (a *aliveMark) run() {
	defer close(a.done)
	t := time.NewTicker(aliveEvery)
	defer t.Stop()
	failed := false
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			err := a.write(now)
			if err != nil && !failed {
				a.log.Warn("history store: cannot write the alive mark; a crash will be dated less closely", "err", err, "path", a.path)
			}
			failed = err != nil
		}
	}
}

func (a *aliveMark) write(now time.Time) error {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], crcTable))
	if _, err := a.f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("write alive mark: %w", err)
	}
	return nil
}

// close stops rewriting the mark and releases the file, which stays.
func (a *aliveMark) close() error {
	var err error
	a.once.Do(func() {
		close(a.stop)
		<-a.done
		err = a.f.Close()
	})
	return err
}

// later answers the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

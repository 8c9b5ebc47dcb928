package recording

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
)

// The files' format: canonical PCM WAV, two channels, 16-bit, the mixer's
// rate.
const (
	channels      = 2
	bytesPerFrame = channels * 2 // one sample of each channel
	headerSize    = 44
	sampleRate    = audio.SampleRate
)

// wavHeader is the 44-byte header of a stereo 16-bit PCM file holding
// dataBytes of samples. The writer rewrites it at every flush, so the file
// on disk always says how much audio it holds up to the last flush
// (go-audio/wav's encoder writes the sizes only at Close, which a killed
// process never reaches; the tests read the files back with its decoder).
func wavHeader(dataBytes uint32) []byte {
	h := make([]byte, headerSize)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVE")
	copy(h[12:], "fmt ")
	binary.LittleEndian.PutUint32(h[16:], 16) // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)  // PCM
	binary.LittleEndian.PutUint16(h[22:], channels)
	binary.LittleEndian.PutUint32(h[24:], sampleRate)
	binary.LittleEndian.PutUint32(h[28:], sampleRate*bytesPerFrame)
	binary.LittleEndian.PutUint16(h[32:], bytesPerFrame)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// durationOf is how long dataBytes of samples play.
func durationOf(dataBytes int64) time.Duration {
	return time.Duration(dataBytes/bytesPerFrame) * time.Second / sampleRate
}

// repairWAV makes the file at path a readable WAV of the whole samples it
// holds, after a crash: a partial sample at the end is cut and the header
// rewritten with the sizes on disk. It answers the audio's length.
func repairWAV(path string) (time.Duration, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("repair recording: %w", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("repair recording: %w", err)
	}
	data := max(st.Size()-headerSize, 0)
	data -= data % bytesPerFrame
	if data > int64(^uint32(0))-36 {
		return 0, errors.New("repair recording: the file is too large for WAV")
	}
	if err := f.Truncate(headerSize + data); err != nil {
		return 0, fmt.Errorf("repair recording: %w", err)
	}
	if _, err := f.WriteAt(wavHeader(uint32(data)), 0); err != nil {
		return 0, fmt.Errorf("repair recording: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("repair recording: %w", err)
	}
	return durationOf(data), nil
}

// wavWriter appends stereo frames to a WAV file and keeps its header true
// at every flush.
type wavWriter struct {
	f       *os.File
	buf     []byte
	written int64 // sample bytes on disk
}

func createWAV(path string) (*wavWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	if _, err := f.Write(wavHeader(0)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("create recording: %w", err)
	}
	return &wavWriter{f: f}, nil
}

// add buffers one frame of both channels.
func (w *wavWriter) add(fr *stereoFrame) {
	for i := range audio.FrameSamples {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(fr.left[i]))
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(fr.right[i]))
	}
}

// flush writes what is buffered, then the header that counts it.
func (w *wavWriter) flush() error {
	if len(w.buf) > 0 {
		if _, err := w.f.WriteAt(w.buf, headerSize+w.written); err != nil {
			return fmt.Errorf("write recording: %w", err)
		}
		w.written += int64(len(w.buf))
		w.buf = w.buf[:0]
	}
	if _, err := w.f.WriteAt(wavHeader(uint32(w.written)), 0); err != nil {
		return fmt.Errorf("write recording header: %w", err)
	}
	return nil
}

// close flushes, syncs and closes the file.
func (w *wavWriter) close() error {
	err := w.flush()
	if serr := w.f.Sync(); err == nil && serr != nil {
		err = fmt.Errorf("sync recording: %w", serr)
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close recording: %w", cerr)
	}
	return err
}

package audio

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	goaudio "github.com/go-audio/audio"
	"github.com/go-audio/wav"
)

// writeToneFile writes frames 20 ms frames of a tone of hz at 8 kHz to
// path as a 16-bit PCM WAV file.
func writeToneFile(t *testing.T, path string, hz float64, frames int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := wav.NewEncoder(f, SampleRate, 16, 1, 1)
	src := NewTone(hz, -20)
	buf := &goaudio.IntBuffer{Format: &goaudio.Format{NumChannels: 1, SampleRate: SampleRate}, SourceBitDepth: 16}
	var fr Frame
	for range frames {
		src.Next(&fr)
		buf.Data = buf.Data[:0]
		for _, s := range fr {
			buf.Data = append(buf.Data, int(s))
		}
		if err := enc.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadPositionVoice: an operator's voice, a directory of WAV files
// named as the built-in ones, speaks the position prompt from its own
// pieces ("caller", then the number's word or digits); a directory that
// lacks a piece is refused, naming it.
func TestLoadPositionVoice(t *testing.T) {
	dir := t.TempDir()
	// "caller" a tone of 300 Hz, 10 frames; each number n a tone of
	// 400+50n Hz, n+1 frames.
	writeToneFile(t, filepath.Join(dir, "caller.wav"), 300, 10)
	for n := range maxSpokenNumber + 1 {
		writeToneFile(t, filepath.Join(dir, strconv.Itoa(n)+".wav"), float64(400+50*n), n+1)
	}
	v, err := LoadPositionVoice(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n     int
		want  []float64 // each piece's tone, in order
		sizes []int
	}{
		{n: 1, want: []float64{300, 450}, sizes: []int{10, 2}},
		{n: 20, want: []float64{300, 1400}, sizes: []int{10, 21}},
		{n: 25, want: []float64{300, 500, 650}, sizes: []int{10, 3, 6}},
	}
	for _, tt := range tests {
		p := v.Prompt(tt.n)
		at := 0
		for i, hz := range tt.want {
			for j := range tt.sizes[i] {
				if at >= p.Len() {
					t.Fatalf("position %d: the prompt ends at frame %d, in piece %d", tt.n, at, i)
				}
				// The resampler's edges aside, each frame is its piece's tone.
				if j > 0 && j < tt.sizes[i]-1 && ToneLevel(p.Frame(at), hz) < 1e-3 {
					t.Errorf("position %d: frame %d (piece %d) lacks %v Hz", tt.n, at, i, hz)
				}
				at++
			}
		}
		if at != p.Len() {
			t.Errorf("position %d: the prompt has %d frames, want %d", tt.n, p.Len(), at)
		}
	}
	if v.Prompt(0) != nil {
		t.Error("position 0 has a prompt")
	}

	if err := os.Remove(filepath.Join(dir, "13.wav")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPositionVoice(dir); err == nil || !strings.Contains(err.Error(), "13.wav") {
		t.Errorf("a voice without 13.wav loaded: %v", err)
	}
}

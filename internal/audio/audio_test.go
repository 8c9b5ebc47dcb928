package audio

import (
	"math"
	"testing"
)

func TestUlawRoundTrip(t *testing.T) {
	var f, back Frame
	NewTone(1000, -6).Next(&f)
	buf := EncodeUlaw(make([]byte, FrameSamples), &f)
	DecodeUlaw(&back, buf)
	for i := range f {
		// µ-law keeps about 13 bits: the error grows with the level.
		if d := math.Abs(float64(f[i]) - float64(back[i])); d > math.Abs(float64(f[i]))/16+8 {
			t.Fatalf("sample %d: %d came back as %d", i, f[i], back[i])
		}
	}
	DecodeUlaw(&back, buf[:10])
	if back[10] != 0 || back[159] != 0 {
		t.Error("a short payload did not leave the rest of the frame silent")
	}
	if ulawSilence[0] != 0xFF {
		t.Errorf("µ-law silence is %#x, want 0xFF", ulawSilence[0])
	}
}

func TestToneDetection(t *testing.T) {
	freqs := []float64{400, 600, 800, 1000, HoldToneHz}
	for i, hz := range freqs {
		var f Frame
		tone := NewTone(hz, -20)
		tone.Next(&f)
		tone.Next(&f) // the second frame: the phase carries over
		got, ok := Dominant(&f, 1e-4, freqs...)
		if !ok || got != i {
			t.Errorf("%v Hz: Dominant = %d, %v; want %d", hz, got, ok, i)
		}
	}
	var quiet Frame
	if _, ok := Dominant(&quiet, 1e-4, freqs...); ok {
		t.Error("silence has a dominant tone")
	}
	var both, a, b Frame
	NewTone(400, -20).Next(&a)
	NewTone(800, -20).Next(&b)
	for i := range both {
		both[i] = a[i] + b[i]
	}
	if _, ok := Dominant(&both, 1e-4, freqs...); ok {
		t.Error("two tones at once have a dominant one")
	}
	if lvl := ToneLevel(&a, 400); lvl < 0.005 || lvl > 0.05 {
		t.Errorf("level of a -20 dBov tone = %v, want about 0.01", lvl)
	}
}

func TestSpeakingDetector(t *testing.T) {
	tests := []struct {
		name   string
		levels []float64
		want   []bool // the state after each frame
	}{
		{"one loud frame is not speech", []float64{-20, -90, -90}, []bool{false, false, false}},
		{"two loud frames are", []float64{-20, -20, -90}, []bool{false, true, true}},
		{"between the thresholds keeps the state", []float64{-20, -20, -43, -43, -43}, []bool{false, true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d speakingDetector
			for i, l := range tt.levels {
				if got, _ := d.update(l); got != tt.want[i] {
					t.Fatalf("after frame %d (%v dBov): speaking %v, want %v", i, l, got, tt.want[i])
				}
			}
		})
	}
	t.Run("quiet for the hangover stops it", func(t *testing.T) {
		var d speakingDetector
		d.update(-20)
		d.update(-20)
		for i := range speakOffFrames - 1 {
			if s, _ := d.update(-90); !s {
				t.Fatalf("stopped after %d quiet frames, want %d", i+1, speakOffFrames)
			}
		}
		if s, changed := d.update(-90); s || !changed {
			t.Fatalf("still speaking after %d quiet frames", speakOffFrames)
		}
	})
}

func TestResample(t *testing.T) {
	for _, rate := range []int{16000, 44100, 48000} {
		src := make([]int16, rate) // 1 s of 1 kHz
		for i := range src {
			src[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/float64(rate)))
		}
		// In chunks, as a device delivers them.
		r := NewResampler(rate, SampleRate)
		var out []int16
		for i := 0; i < len(src); i += 441 {
			out = r.Process(out, src[i:min(i+441, len(src))])
		}
		if d := len(out) - SampleRate; d < -2 || d > 2 {
			t.Errorf("%d Hz: 1 s became %d samples, want %d", rate, len(out), SampleRate)
		}
		var f Frame
		copy(f[:], out[800:])
		if got, ok := Dominant(&f, 1e-4, 400, 1000, 2000, 3000); !ok || got != 1 {
			t.Errorf("%d Hz: the 1 kHz tone did not come through (%d, %v)", rate, got, ok)
		}
		back := Resample(out, SampleRate, rate)
		if d := len(back) - rate; d < -12 || d > 12 {
			t.Errorf("8 kHz back to %d Hz: %d samples, want about %d", rate, len(back), rate)
		}
	}
}

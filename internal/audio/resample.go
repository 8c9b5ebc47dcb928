package audio

import "math"

// Resampler converts a stream of mono PCM16 between sample rates by linear
// interpolation; when it lowers the rate it first averages over one output
// period (a box low-pass) so that what cannot be kept does not fold back as
// aliasing. That is telephone quality, which is all an 8 kHz call carries.
// It keeps its state between calls, so a stream can go through in chunks.
type Resampler struct {
	step float64 // input samples per output sample
	pos  float64 // next output's position; -1 is prev, 0 the chunk's first
	prev float64

	box    []float64 // the low-pass's window (nil when raising the rate)
	boxPos int
	boxSum float64

	scratch []float64
}

// NewResampler converts from one rate to another (in Hz, both positive).
func NewResampler(from, to int) *Resampler {
	r := &Resampler{step: float64(from) / float64(to)}
	if n := int(math.Round(r.step)); n > 1 {
		r.box = make([]float64, n)
	}
	return r
}

// Process appends to dst the output for the input chunk in.
func (r *Resampler) Process(dst []int16, in []int16) []int16 {
	if len(in) == 0 {
		return dst
	}
	x := r.lowPass(in)
	at := func(i int) float64 {
		if i < 0 {
			return r.prev
		}
		return x[i]
	}
	for {
		i := int(math.Floor(r.pos))
		if i+1 >= len(x) {
			break
		}
		a, b := at(i), at(i+1)
		dst = append(dst, clip(int32(math.Round(a+(b-a)*(r.pos-float64(i))))))
		r.pos += r.step
	}
	r.prev = x[len(x)-1]
	r.pos -= float64(len(x))
	return dst
}

// lowPass returns the chunk as floats, averaged over the box window when
// the rate goes down.
func (r *Resampler) lowPass(in []int16) []float64 {
	r.scratch = r.scratch[:0]
	for _, v := range in {
		x := float64(v)
		if r.box != nil {
			r.boxSum += x - r.box[r.boxPos]
			r.box[r.boxPos] = x
			r.boxPos = (r.boxPos + 1) % len(r.box)
			x = r.boxSum / float64(len(r.box))
		}
		r.scratch = append(r.scratch, x)
	}
	return r.scratch
}

// Resample converts a whole buffer from one rate to another.
func Resample(in []int16, from, to int) []int16 {
	if from == to {
		return in
	}
	return NewResampler(from, to).Process(make([]int16, 0, len(in)*to/from+1), in)
}

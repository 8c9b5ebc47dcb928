package audio

import "github.com/zaf/g711"

// G.711 µ-law through lookup tables built once from the g711 package: a
// frame encodes or decodes without a call per sample.
// They are variables with initialisers, not filled by init, because other
// package variables (µ-law silence) are computed from them.
var (
	ulawEncode = func() (t [1 << 16]uint8) {
		for i := range t {
			t[i] = g711.EncodeUlawFrame(int16(uint16(i)))
		}
		return t
	}()
	ulawDecode = func() (t [256]int16) {
		for i := range t {
			t[i] = g711.DecodeUlawFrame(uint8(i))
		}
		return t
	}()
)

// EncodeUlaw writes f as FrameSamples bytes of µ-law (PCMU) into dst,
// which must hold them, and returns them.
func EncodeUlaw(dst []byte, f *Frame) []byte {
	dst = dst[:FrameSamples]
	for i, s := range f {
		dst[i] = ulawEncode[uint16(s)]
	}
	return dst
}

// DecodeUlaw reads µ-law bytes into f. A short payload leaves the rest of
// the frame silent; a long one is cut to the frame.
func DecodeUlaw(f *Frame, src []byte) {
	n := 0
	for n < len(src) && n < FrameSamples {
		f[n] = ulawDecode[src[n]]
		n++
	}
	for ; n < FrameSamples; n++ {
		f[n] = 0
	}
}

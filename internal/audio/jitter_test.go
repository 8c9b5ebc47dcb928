package audio

import "testing"

// packet is one µ-law packet whose samples all decode to the same value,
// which names it.
func packet(v int16) []byte {
	var f Frame
	for i := range f {
		f[i] = v
	}
	return EncodeUlaw(make([]byte, FrameSamples), &f)
}

func TestJitterBuffer(t *testing.T) {
	const ts0 = 0xFFFFFF00 // wraps around during the test
	type push struct {
		n int // packet number: timestamp ts0 + n*160, value (n+1)*100
	}
	tests := []struct {
		name   string
		target int
		steps  []any   // push or "pop"
		want   []int16 // what each pop plays: its first sample, 0 silence
		stats  JitterStats
	}{
		{
			name: "plays in order after the target delay", target: 2,
			steps: []any{push{0}, push{1}, push{2}, "pop", "pop", "pop", "pop", "pop"},
			want:  []int16{0, 0, 100, 200, 300},
			stats: JitterStats{Packets: 3, Underruns: 2},
		},
		{
			name: "reorders", target: 1,
			steps: []any{push{0}, push{2}, push{1}, "pop", "pop", "pop", "pop"},
			want:  []int16{0, 100, 200, 300},
			stats: JitterStats{Packets: 3, Underruns: 1},
		},
		{
			name: "a lost packet plays silence", target: 1,
			steps: []any{push{0}, push{2}, "pop", "pop", "pop", "pop"},
			want:  []int16{0, 100, 0, 300},
			stats: JitterStats{Packets: 2, Underruns: 2},
		},
		{
			name: "a late packet is dropped", target: 1,
			steps: []any{push{0}, "pop", "pop", "pop", push{1}, push{0}, "pop"},
			want:  []int16{0, 100, 0, 200},
			stats: JitterStats{Packets: 2, Late: 1, Underruns: 2},
		},
		{
			name: "a burst is caught up", target: 1,
			steps: []any{push{0}, push{1}, push{2}, push{3}, push{4}, push{5}, push{6}, "pop", "pop", "pop"},
			want:  []int16{0, 200, 400},
			stats: JitterStats{Packets: 7, Underruns: 1, Skipped: 2},
		},
		{
			name: "a jump restarts it", target: 1,
			steps: []any{push{0}, "pop", "pop", push{1000}, "pop", "pop"},
			want:  []int16{0, 100, 0, 10100},
			stats: JitterStats{Packets: 2, Underruns: 2, Resyncs: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := NewJitterBuffer(tt.target)
			var got []int16
			for _, s := range tt.steps {
				switch s := s.(type) {
				case push:
					v := int16((s.n + 1) * 100 % 30000)
					j.PushUlaw(ts0+uint32(s.n*FrameSamples), packet(v))
				case string:
					var f Frame
					j.Pop(&f)
					got = append(got, f[0])
				}
			}
			for i := range tt.want {
				want := tt.want[i]
				// µ-law is lossy: compare by the value each packet decodes to.
				if want != 0 {
					var ref Frame
					DecodeUlaw(&ref, packet(want))
					want = ref[0]
				}
				if i >= len(got) || got[i] != want {
					t.Fatalf("pops = %v, want %v", got, tt.want)
				}
			}
			if s := j.Stats(); s != tt.stats {
				t.Errorf("stats = %+v, want %+v", s, tt.stats)
			}
		})
	}
}

package portaudio

import (
	"slices"
	"testing"
)

func TestRing(t *testing.T) {
	type op struct {
		write   []int16 // written when not nil
		ch      int     // channels of the write or read (0: 1)
		read    int     // frames to read when write is nil
		want    []int16 // what the read gives (filled frames, then zeros)
		dropped int     // what the write drops
	}
	tests := []struct {
		name          string
		capacity, pri int
		ops           []op
	}{
		{"waits for prime, then reads in order", 6, 3, []op{
			{write: []int16{1, 2}},
			{read: 2, want: []int16{0, 0}},
			{write: []int16{3}},
			{read: 2, want: []int16{1, 2}},
			{read: 1, want: []int16{3}},
		}},
		{"a short read gives what there is and waits for prime again", 6, 2, []op{
			{write: []int16{1, 2, 3}},
			{read: 4, want: []int16{1, 2, 3, 0}},
			{write: []int16{4}},
			{read: 1, want: []int16{0}},
			{write: []int16{5}},
			{read: 2, want: []int16{4, 5}},
		}},
		{"a full ring drops the oldest", 4, 1, []op{
			{write: []int16{1, 2, 3}},
			{write: []int16{4, 5, 6}, dropped: 2},
			{read: 4, want: []int16{3, 4, 5, 6}},
		}},
		{"a write longer than the ring keeps its newest", 3, 1, []op{
			{write: []int16{9}},
			{write: []int16{1, 2, 3, 4, 5}, dropped: 3},
			{read: 3, want: []int16{3, 4, 5}},
		}},
		{"wraps around", 4, 1, []op{
			{write: []int16{1, 2, 3}},
			{read: 2, want: []int16{1, 2}},
			{write: []int16{4, 5, 6}},
			{read: 4, want: []int16{3, 4, 5, 6}},
		}},
		{"downmixes stereo input", 4, 1, []op{
			{write: []int16{100, 200, -50, -150, 32767, 32767}, ch: 2},
			{read: 3, want: []int16{150, -100, 32767}},
		}},
		{"copies to every channel of stereo output", 4, 1, []op{
			{write: []int16{7, 8}},
			{read: 3, ch: 2, want: []int16{7, 7, 8, 8, 0, 0}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newRing(tt.capacity, tt.pri)
			for i, o := range tt.ops {
				ch := max(o.ch, 1)
				if o.write != nil {
					if got := q.write(o.write, ch); got != o.dropped {
						t.Fatalf("op %d: write dropped %d, want %d", i, got, o.dropped)
					}
					continue
				}
				dst := make([]int16, o.read*ch)
				for j := range dst {
					dst[j] = -1
				}
				k := q.read(dst, ch)
				clear(dst[k*ch:])
				if !slices.Equal(dst, o.want) {
					t.Fatalf("op %d: read %v, want %v", i, dst, o.want)
				}
			}
		})
	}
}

func TestRingTrim(t *testing.T) {
	q := newRing(8, 1)
	q.write([]int16{1, 2, 3, 4, 5}, 1)
	if got := q.trim(2); got != 3 {
		t.Fatalf("trim dropped %d, want 3", got)
	}
	if got := q.trim(2); got != 0 {
		t.Fatalf("second trim dropped %d, want 0", got)
	}
	dst := make([]int16, 2)
	if q.read(dst, 1) != 2 || !slices.Equal(dst, []int16{4, 5}) {
		t.Fatalf("after trim read %v, want [4 5]", dst)
	}
	if q.level() != 0 {
		t.Fatalf("level %d, want 0", q.level())
	}
}

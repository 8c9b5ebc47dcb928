package benchenv

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        int
	}{
		{"unset", "", 7},
		{"set", "12", 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_BENCH_TEST_COUNT", tc.value)
			if got := Count(t, "SWITCHBOARD_BENCH_TEST_COUNT", 7); got != tc.want {
				t.Errorf("Count = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        int
	}{
		{"unset", "", 7},
		{"zero", "0", 0},
		{"set", "50", 50},
		{"all", "100", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_BENCH_TEST_PCT", tc.value)
			if got := Percent(t, "SWITCHBOARD_BENCH_TEST_PCT", 7); got != tc.want {
				t.Errorf("Percent = %d, want %d", got, tc.want)
			}
		})
	}
}

package benchenv

import "testing"

func TestCountAndPercent(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		read        func(testing.TB, string, int) int
		want        int
	}{
		{"count unset", "", Count, 7},
		{"count set", "12", Count, 12},
		{"percent unset", "", Percent, 7},
		{"percent zero", "0", Percent, 0},
		{"percent set", "50", Percent, 50},
		{"percent all", "100", Percent, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHBOARD_BENCH_TEST_VALUE", tc.value)
			if got := tc.read(t, "SWITCHBOARD_BENCH_TEST_VALUE", 7); got != tc.want {
				t.Errorf("= %d, want %d", got, tc.want)
			}
		})
	}
}

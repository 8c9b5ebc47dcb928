// Package benchenv reads the sizes the benchmarks and long tests take
// from the environment (SWITCHBOARD_BENCH_*), so that one run can be made
// larger or smaller without editing code.
package benchenv

import (
	"os"
	"strconv"
	"testing"
)

// Count answers the positive count in the environment variable name, or
// def when it is unset; anything else fails tb.
func Count(tb testing.TB, name string, def int) int {
	tb.Helper()
	return intIn(tb, name, def, 1, int(^uint(0)>>1), "a positive count")
}

// Percent answers the percentage, 0 to 100, in the environment variable
// name, or def when it is unset; anything else fails tb.
func Percent(tb testing.TB, name string, def int) int {
	tb.Helper()
	return intIn(tb, name, def, 0, 100, "a percentage, 0 to 100")
}

// intIn answers the integer from lo to hi in name, or def when unset.
func intIn(tb testing.TB, name string, def, lo, hi int, want string) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		tb.Fatalf("%s=%q: want %s", name, v, want)
	}
	return n
}

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
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

// Percent answers the percentage, 0 to 100, in the environment variable
// name, or def when it is unset; anything else fails tb.
func Percent(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 100 {
		tb.Fatalf("%s=%q: want a percentage, 0 to 100", name, v)
	}
	return n
}

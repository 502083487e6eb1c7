package cachemonitor

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMain points CACHE_MONITOR_LIB at the library cargo built when it is not set, so that the tests and
// the examples (which call Open("")) load the library of this repository.
func TestMain(m *testing.M) {
	if os.Getenv(LibraryEnv) == "" {
		path, err := cargoLibrary()
		if err != nil {
			fmt.Fprintf(os.Stderr, "cachemonitor tests: %v\n", err)
			os.Exit(1)
		}
		os.Setenv(LibraryEnv, path)
	}
	os.Exit(m.Run())
}

// cargoLibrary finds libcache_monitor.so in cargo's target directory ($CARGO_TARGET_DIR, else the
// target/ beside the Cargo.toml found walking up from here): the newer of the debug and release builds.
func cargoLibrary() (string, error) {
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "Cargo.toml")); err == nil {
				target = filepath.Join(dir, "target")
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", fmt.Errorf("no Cargo.toml above the package: set %s to libcache_monitor.so", LibraryEnv)
			}
			dir = parent
		}
	}
	var newest string
	var newestTime int64
	for _, profile := range []string{"debug", "release"} {
		path := filepath.Join(target, profile, DefaultLibrary)
		if info, err := os.Stat(path); err == nil && info.ModTime().UnixNano() > newestTime {
			newest, newestTime = path, info.ModTime().UnixNano()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no %s in %s/{debug,release}: run cargo build, or set %s", DefaultLibrary, target, LibraryEnv)
	}
	return newest, nil
}

// testLibrary opens the library for a test and resets it: the monitor is process-wide, so tests that
// count do not run in parallel, and each starts from zero.
func testLibrary(t testing.TB) *Library {
	t.Helper()
	lib, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Reset(); err != nil {
		t.Fatal(err)
	}
	return lib
}

// exposition is a parsed Prometheus text render: the value of every series, by name and labels exactly
// as rendered.
type exposition map[string]float64

// parse reads a Prometheus text render strictly: every line is a comment or "series value".
func parse(t testing.TB, text []byte) exposition {
	t.Helper()
	samples := exposition{}
	for _, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		space := strings.LastIndexByte(line, ' ')
		if space < 0 {
			t.Fatalf("not a sample: %q", line)
		}
		value, err := strconv.ParseFloat(line[space+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		if _, twice := samples[line[:space]]; twice {
			t.Fatalf("series twice: %q", line)
		}
		samples[line[:space]] = value
	}
	return samples
}

// render renders and parses.
func render(t testing.TB, lib *Library) exposition {
	t.Helper()
	text, err := lib.Render()
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, text)
}

// value returns a series' value, or -1 when the render does not have it.
func (e exposition) value(series string) float64 {
	if v, ok := e[series]; ok {
		return v
	}
	return -1
}

// tally counts what a test recorded, to compare with a render.
type tally struct {
	ops     map[[2]uint32]uint64 // by operation and result
	seconds map[[2]uint32]float64
	custom  []string // names of custom operations, from FirstCustomOperation on
}

func newTally(custom ...string) *tally {
	return &tally{ops: map[[2]uint32]uint64{}, seconds: map[[2]uint32]float64{}, custom: custom}
}

func (t *tally) add(op Operation, result Result, durationNs uint64, n uint64) {
	key := [2]uint32{uint32(op), uint32(result)}
	t.ops[key] += n
	t.seconds[key] += float64(durationNs) * float64(n) / 1e9
}

func (t *tally) name(op Operation) string {
	if op >= FirstCustomOperation {
		return t.custom[op-FirstCustomOperation]
	}
	return op.String()
}

func (t *tally) total() (n uint64) {
	for _, count := range t.ops {
		n += count
	}
	return n
}

// check compares every operation and result series of the render with the tally: counters, histogram
// counts, +Inf buckets and sums.
func (t *tally) check(tb testing.TB, e exposition) {
	tb.Helper()
	for op := Operation(0); int(op) < int(FirstCustomOperation)+len(t.custom); op++ {
		for result := ResultHit; result <= ResultError; result++ {
			key := [2]uint32{uint32(op), uint32(result)}
			want := float64(t.ops[key])
			if want == 0 {
				want = -1 // a series appears at its first record
			}
			labels := fmt.Sprintf(`operation="%s",result="%s"`, t.name(op), result)
			for _, series := range []string{
				"cuenv_cache_operations_total{" + labels + "}",
				"cuenv_cache_operation_duration_seconds_count{" + labels + "}",
				"cuenv_cache_operation_duration_seconds_bucket{" + labels + `,le="+Inf"}`,
			} {
				if got := e.value(series); got != want {
					tb.Errorf("%s = %v, want %v", series, got, want)
				}
			}
			if want > 0 {
				series := "cuenv_cache_operation_duration_seconds_sum{" + labels + "}"
				if got := e.value(series); math.Abs(got-t.seconds[key]) > 1e-6*math.Max(1, t.seconds[key]) {
					tb.Errorf("%s = %v, want %v", series, got, t.seconds[key])
				}
			}
		}
	}
}

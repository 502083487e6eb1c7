package cachemonitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// workload is the n-th record of goroutine g: a pure function, so the test can tally what was recorded.
func workload(g, i int) (op Operation, result Result, durationNs uint64, key string) {
	op = Operation((g + i) % int(FirstCustomOperation))
	switch op {
	case OperationGet, OperationContains:
		result = ResultHit
		if i%4 == 0 {
			result = ResultMiss
		}
	case OperationLoad:
		result = ResultOK
		if i%10 == 0 {
			result = ResultError
		}
	default:
		result = ResultOK
		if i%97 == 0 {
			result = ResultError
		}
	}
	durationNs = uint64(i%5000)*997 + 100
	key = [...]string{"user:42", "session:7f3a", "path/a/b.json", ""}[i%4]
	return
}

func TestRecordFromManyGoroutinesCountsExactly(t *testing.T) {
	lib := testLibrary(t)
	const goroutines, perGoroutine = 64, 5000
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				op, result, ns, key := workload(g, i)
				if err := lib.Record(op, result, time.Duration(ns), key); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := newTally()
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perGoroutine; i++ {
			op, result, ns, _ := workload(g, i)
			want.add(op, result, ns, 1)
		}
	}
	if want.total() != goroutines*perGoroutine {
		t.Fatalf("the workload covers %d records", want.total())
	}
	e := render(t, lib)
	want.check(t, e)
	// Patterns: a quarter of the records have the key user:42, counted under user:* by result.
	var userByResult [4]float64
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perGoroutine; i++ {
			if _, result, _, key := workload(g, i); key == "user:42" {
				userByResult[result]++
			}
		}
	}
	for result, want := range userByResult {
		if want == 0 {
			want = -1
		}
		series := `cuenv_cache_pattern_operations_total{pattern="user:*",result="` + Result(result).String() + `"}`
		if got := e.value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func TestErrorsCarryTheStatusAndTheLibrarysMessage(t *testing.T) {
	lib := testLibrary(t)
	err := lib.Record(99, ResultHit, time.Microsecond, "user:1")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Record(99) = %v, want an *Error", err)
	}
	if e.Status != StatusUnknownOperation || e.Func != "cache_monitor_record" || e.Message != "unknown operation code 99" {
		t.Errorf("got %+v", *e)
	}
	if !errors.Is(err, StatusUnknownOperation) || errors.Is(err, StatusUnknownResult) {
		t.Errorf("errors.Is does not match the status: %v", err)
	}
	if got := err.Error(); got != "cachemonitor: cache_monitor_record: unknown operation code 99 (status -2)" {
		t.Errorf("Error() = %q", got)
	}
	for _, c := range []struct {
		err  error
		want Status
	}{
		{lib.Record(OperationGet, 4, 0, ""), StatusUnknownResult},
		{lib.Begin(1000), StatusUnknownOperation},
		{lib.SetGauge(7, 1), StatusUnknownGauge},
		{lib.Configure("not json"), StatusInvalidJSON},
		{lib.Configure(`{"colour": "red"}`), StatusInvalidConfig},
		{lib.ImportState([]byte("not json")), StatusInvalidSnapshot},
		{lib.ImportState([]byte("{}")), StatusForeignSnapshot},
		{lib.ImportState(nil), StatusNullPointer},
		{lib.Serve("not an address"), exporterStatus(lib, StatusInvalidAddress)},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("got %v, want status %d (%v)", c.err, c.want, c.want)
		}
	}
	if err := lib.Configure(`{"colour": "red"}`); !strings.Contains(err.Error(), "colour") {
		t.Errorf("the message does not name the key: %v", err)
	}
	if got := render(t, lib).value(`cuenv_cache_operations_total{operation="get",result="hit"}`); got != -1 {
		t.Errorf("a refused record was counted: get hit = %v", got)
	}
}

func TestEachFailureCarriesItsOwnMessageWhateverOtherGoroutinesDo(t *testing.T) {
	lib := testLibrary(t)
	// Goroutines failing at once, on whatever OS threads the scheduler gives them: the library keeps one
	// message per thread, and each error carries the message read on its call's thread.
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				code := Operation(1000 + g*1000 + i)
				err := lib.Record(code, ResultHit, 0, "")
				want := fmt.Sprintf("unknown operation code %d", code)
				var e *Error
				if !errors.As(err, &e) || e.Message != want {
					t.Errorf("Record(%d) = %v, want the message %q", code, err, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestNewStatusesOfABI16(t *testing.T) {
	lib := testLibrary(t)
	if err := lib.Record(OperationGet, ResultHit, time.Microsecond, ""); err != nil {
		t.Fatal(err)
	}
	err := lib.Configure(`{"buckets": [0.5]}`)
	if !errors.Is(err, StatusBucketsLocked) {
		t.Errorf("new buckets after a record: %v, want StatusBucketsLocked", err)
	}
	if err := lib.Reset(); err != nil {
		t.Fatal(err)
	}
	// Frames that are not UTF-8 never cost the record.
	if err := lib.RecordWithFrames(OperationGet, ResultHit, 0, "", "main.\xff"); err != nil {
		t.Errorf("RecordWithFrames with frames that are not UTF-8: %v", err)
	}
	if got := render(t, lib).value(`cuenv_cache_operations_total{operation="get",result="hit"}`); got != 1 {
		t.Errorf("get hit = %v, want 1", got)
	}
}

func TestSwitchedOffNothingCountsAndSwitchedOnCountingResumes(t *testing.T) {
	lib := testLibrary(t)
	t.Cleanup(func() { lib.SetEnabled(true) })
	if !lib.Enabled() {
		t.Fatal("monitoring is on by default")
	}
	series := `cuenv_cache_operations_total{operation="get",result="hit"}`
	if err := lib.Record(OperationGet, ResultHit, time.Microsecond, "user:1"); err != nil {
		t.Fatal(err)
	}
	lib.SetEnabled(false)
	if lib.Enabled() {
		t.Fatal("still on after SetEnabled(false)")
	}
	for i := 0; i < 10; i++ {
		if err := lib.Record(OperationGet, ResultHit, time.Microsecond, "user:1"); err != nil {
			t.Fatalf("a record while switched off: %v", err)
		}
	}
	batch := lib.NewBatch(4)
	defer batch.Close()
	if err := batch.Add(OperationGet, ResultHit, time.Microsecond, ""); err != nil {
		t.Fatal(err)
	}
	if err := batch.Flush(); err != nil {
		t.Fatalf("a batch while switched off: %v", err)
	}
	if got := render(t, lib).value(series); got != 1 {
		t.Errorf("switched off: get hit = %v, want the 1 counted before", got)
	}
	lib.SetEnabled(true)
	if err := lib.Record(OperationGet, ResultHit, time.Microsecond, "user:1"); err != nil {
		t.Fatal(err)
	}
	if got := render(t, lib).value(series); got != 2 {
		t.Errorf("switched on again: get hit = %v, want 2", got)
	}
}

func TestVersionString(t *testing.T) {
	lib := testLibrary(t)
	got := lib.VersionString()
	if !strings.HasPrefix(got, "cache-monitor ") || !strings.HasSuffix(got, fmt.Sprintf(" (C ABI %d.%d)", ABIMajor, ABIMinor)) {
		t.Errorf("VersionString() = %q", got)
	}
}

func TestStatusTextsAreTheLibrarys(t *testing.T) {
	lib := testLibrary(t)
	for code := 0; code < len(statusText); code++ {
		status := Status(-code)
		if got, want := status.String(), lib.describe(status); got != want {
			t.Errorf("status %d: %q, the library says %q", -code, got, want)
		}
	}
	if got, want := Status(-100).String(), "unknown status code -100"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := StatusBusy.Error(); got != "cachemonitor: not possible in the monitor's current state" {
		t.Errorf("got %q", got)
	}
}

func TestOpenChecksThePathAndTheABI(t *testing.T) {
	if _, err := Open("/nonexistent/libcache_monitor.so"); err == nil || !strings.Contains(err.Error(), "/nonexistent/libcache_monitor.so") {
		t.Errorf("Open of a missing file: %v", err)
	}
	if _, err := Open("libc.so.6"); err == nil || !strings.Contains(err.Error(), "no symbol cache_monitor_abi_version") {
		t.Errorf("Open of another library: %v", err)
	}
	for version, want := range map[uint32]bool{
		ABIMajor<<16 | ABIMinor:       true,
		ABIMajor<<16 | (ABIMinor + 1): true,
		ABIMajor<<16 | (ABIMinor - 1): false,
		(ABIMajor + 1) << 16:          false,
		(ABIMajor-1)<<16 | 0xffff:     false,
	} {
		if got := compatible(version); got != want {
			t.Errorf("compatible(%d.%d) = %v", version>>16, version&0xffff, got)
		}
	}
	lib := testLibrary(t)
	if major, minor := lib.ABIVersion(); major != ABIMajor || minor < ABIMinor {
		t.Errorf("ABI %d.%d", major, minor)
	}
	if lib.Path() == "" {
		t.Error("no path")
	}
}

func TestBeginFinishAndStartFinishTrackOperationsInFlight(t *testing.T) {
	lib := testLibrary(t)
	inFlight := `cuenv_cache_stats{metric="operations_in_flight"}`
	for i := 0; i < 3; i++ {
		if err := lib.Begin(OperationLoad); err != nil {
			t.Fatal(err)
		}
	}
	started, err := lib.Start(OperationPut)
	if err != nil {
		t.Fatal(err)
	}
	if got := render(t, lib).value(inFlight); got != 4 {
		t.Fatalf("in flight = %v, want 4", got)
	}
	// Finish from other goroutines, which may run on other OS threads; the third through the deprecated
	// End, the same call.
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			finish := lib.Finish
			if i == 2 {
				finish = lib.End
			}
			if err := finish(OperationLoad, ResultOK, time.Millisecond, "user:1"); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if err := started.Finish(ResultOK, "session:1"); err != nil {
		t.Fatal(err)
	}
	e := render(t, lib)
	if got := e.value(inFlight); got != 0 {
		t.Errorf("in flight = %v, want 0", got)
	}
	if got := e.value(`cuenv_cache_operations_total{operation="load",result="ok"}`); got != 3 {
		t.Errorf("load ok = %v, want 3", got)
	}
	if got := e.value(`cuenv_cache_operations_total{operation="put",result="ok"}`); got != 1 {
		t.Errorf("put ok = %v, want 1", got)
	}
}

func TestGaugesAndNegativeDurations(t *testing.T) {
	lib := testLibrary(t)
	if err := lib.SetGauge(GaugeSizeBytes, 123456); err != nil {
		t.Fatal(err)
	}
	if err := lib.SetGauge(GaugeEntries, 42); err != nil {
		t.Fatal(err)
	}
	if err := lib.Record(OperationGet, ResultHit, -time.Second, ""); err != nil {
		t.Fatal(err)
	}
	// Durations above the library's ceiling (2^42-1 ns, about 73 minutes) count as the ceiling.
	if err := lib.Record(OperationGet, ResultMiss, math.MaxInt64, ""); err != nil {
		t.Fatal(err)
	}
	e := render(t, lib)
	for series, want := range map[string]float64{
		`cuenv_cache_stats{metric="size_bytes"}`:                                      123456,
		`cuenv_cache_stats{metric="entries"}`:                                         42,
		`cuenv_cache_operation_duration_seconds_sum{operation="get",result="hit"}`:    0,
		`cuenv_cache_operation_duration_seconds_count{operation="get",result="hit"}`:  1,
		`cuenv_cache_operation_duration_seconds_sum{operation="get",result="miss"}`:   4398.046511103,
		`cuenv_cache_operation_duration_seconds_count{operation="get",result="miss"}`: 1,
	} {
		if got := e.value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func TestEveryRenderIsWhole(t *testing.T) {
	lib := testLibrary(t)
	for i := 0; i < 1000; i++ {
		if err := lib.Record(OperationGet, ResultHit, time.Duration(i)*time.Microsecond, "user:1"); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, render func() ([]byte, error), valid func([]byte) bool) {
		t.Helper()
		for i := 0; i < 2; i++ {
			text, err := render()
			if err != nil || !valid(text) {
				t.Errorf("%s: %v, %.200q", name, err, text)
			}
		}
	}
	isJSON := func(text []byte) bool { return json.Valid(text) }
	check("Render", lib.Render, func(text []byte) bool {
		return strings.HasSuffix(string(text), "\n") && parse(t, text).value(`cuenv_cache_operations_total{operation="get",result="hit"}`) == 1000
	})
	check("RenderOpenMetrics", lib.RenderOpenMetrics, func(text []byte) bool { return strings.HasSuffix(string(text), "# EOF\n") })
	check("RenderHitRateJSON", lib.RenderHitRateJSON, func(text []byte) bool {
		var report struct {
			Overall struct{ Hits, Misses int }
		}
		return json.Unmarshal(text, &report) == nil && report.Overall.Hits == 1000 && report.Overall.Misses == 0
	})
	check("RenderStatsJSON", lib.RenderStatsJSON, isJSON)
	check("ExportState", lib.ExportState, func(text []byte) bool {
		return isJSON(text) && strings.Contains(string(text), `"cache-monitor-state"`)
	})
	check("RenderFlamegraphFolded", lib.RenderFlamegraphFolded, func(text []byte) bool { return true })
	check("RenderFlamegraphSVG", lib.RenderFlamegraphSVG, func(text []byte) bool { return strings.Contains(string(text), "<svg") })
	if text, err := lib.RenderFlamegraphFolded(); err != nil || text == nil || len(text) != 0 {
		t.Errorf("nothing sampled: an empty text, not nil and not an error: %v, %q", err, text)
	}
}

func TestRecordWithFramesShowsTheGoCallSiteInTheFlamegraph(t *testing.T) {
	lib := testLibrary(t)
	if err := lib.Configure(`{"profiler": {"sample_every": 1}}`); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := lib.Configure(`{"profiler": {"sample_every": 0}}`); err != nil {
			t.Fatal(err)
		}
	}()
	const site = "main.main;main.serve;cache.(*Cache).Get"
	for i := 0; i < 10; i++ {
		if err := lib.RecordWithFrames(OperationGet, ResultHit, time.Microsecond, "user:1", site); err != nil {
			t.Fatal(err)
		}
	}
	folded, err := lib.RenderFlamegraphFolded()
	if err != nil {
		t.Fatal(err)
	}
	var sampled int
	for _, line := range strings.Split(string(folded), "\n") {
		if strings.Contains(line, site+";cache_monitor::get ") {
			sampled++
		}
	}
	if sampled == 0 {
		t.Errorf("no stack shows %s:\n%s", site, folded)
	}
}

// exporterStatus is want, or StatusExporterNotBuilt for a library built without the exporter, which
// answers that to every serve call.
func exporterStatus(lib *Library, want Status) Status {
	if errors.Is(lib.StopServing(), StatusExporterNotBuilt) {
		return StatusExporterNotBuilt
	}
	return want
}

func TestServeServeAddressAndStopServing(t *testing.T) {
	lib := testLibrary(t)
	if exporterStatus(lib, StatusOK) == StatusExporterNotBuilt {
		t.Skip("the library was built without the exporter")
	}
	if err := lib.Record(OperationPut, ResultOK, time.Microsecond, ""); err != nil {
		t.Fatal(err)
	}
	if err := lib.Serve("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer lib.StopServing()
	addr, err := lib.ServeAddress()
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("ServeAddress = %q, %v", addr, err)
	}
	if err := lib.Serve("127.0.0.1:0"); !errors.Is(err, StatusAlreadyServing) {
		t.Errorf("second Serve: %v", err)
	}
	response, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil || response.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", response.StatusCode, err)
	}
	if got := parse(t, body).value(`cuenv_cache_operations_total{operation="put",result="ok"}`); got != 1 {
		t.Errorf("served put ok = %v, want 1", got)
	}
	if err := lib.StopServing(); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.ServeAddress(); !errors.Is(err, StatusNotServing) {
		t.Errorf("ServeAddress after StopServing: %v", err)
	}
	if err := lib.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestCustomOperations(t *testing.T) {
	lib := testLibrary(t)
	if err := lib.Configure(`{"operations": ["compact"]}`); err != nil {
		t.Fatal(err)
	}
	if err := lib.Record(FirstCustomOperation, ResultOK, time.Millisecond, ""); err != nil {
		t.Fatal(err)
	}
	if err := lib.Record(FirstCustomOperation+1, ResultOK, time.Millisecond, ""); !errors.Is(err, StatusUnknownOperation) {
		t.Errorf("unregistered custom code: %v", err)
	}
	want := newTally("compact")
	want.add(FirstCustomOperation, ResultOK, 1e6, 1)
	want.check(t, render(t, lib))
	if got := FirstCustomOperation.String(); got != "operation(7)" {
		t.Errorf("String() = %q", got)
	}
}

func TestRecordWithExemplarShowsOnItsBucketAndRefusalsRecordNothing(t *testing.T) {
	lib := testLibrary(t)
	// 1.2 ms: the (0.001, 0.0025] bucket.
	if err := lib.RecordWithExemplar(OperationGet, ResultHit, 1200*time.Microsecond, "user:1",
		TraceID("4bf92f3577b34da6"), Label{"span_id", "00f067aa"}); err != nil {
		t.Fatal(err)
	}
	openMetrics, err := lib.RenderOpenMetrics()
	if err != nil {
		t.Fatal(err)
	}
	line := `cuenv_cache_operation_duration_seconds_bucket{operation="get",result="hit",le="0.0025"} 1 ` +
		`# {trace_id="4bf92f3577b34da6",span_id="00f067aa"} 0.0012 `
	if !strings.Contains(string(openMetrics), line) {
		t.Errorf("no exemplar on the bucket line in:\n%s", openMetrics)
	}
	if text, _ := lib.Render(); strings.Contains(string(text), " # {") {
		t.Errorf("the text format has no exemplars:\n%s", text)
	}
	if body, _ := lib.RenderProtobuf(); !strings.Contains(string(body), "4bf92f3577b34da6") {
		t.Error("the protobuf exposition lacks the exemplar")
	}

	for _, refused := range []struct {
		labels []Label
		status Status
		says   string
	}{
		{[]Label{{"trace-id", "x"}}, StatusInvalidExemplar, `"trace-id"`},
		{[]Label{TraceID("a"), TraceID("b")}, StatusInvalidExemplar, "given twice"},
		{[]Label{TraceID(strings.Repeat("x", 121))}, StatusInvalidExemplar, "129 characters"},
		{[]Label{TraceID("a\nb=c")}, StatusInvalidExemplar, "line feed"},
		{[]Label{TraceID("\xff")}, StatusInvalidUTF8, "UTF-8"},
	} {
		err := lib.RecordWithExemplar(OperationGet, ResultHit, time.Second, "", refused.labels...)
		var e *Error
		if !errors.Is(err, refused.status) || !errors.As(err, &e) || !strings.Contains(e.Message, refused.says) {
			t.Errorf("%v: %v, want %v saying %s", refused.labels, err, refused.status, refused.says)
		}
	}
	if got := render(t, lib).value(`cuenv_cache_operations_total{operation="get",result="hit"}`); got != 1 {
		t.Errorf("get hit = %v, want 1: refused calls record nothing", got)
	}
	// No labels: the value and time alone.
	if err := lib.RecordWithExemplar(OperationPut, ResultOK, 500*time.Nanosecond, ""); err != nil {
		t.Fatal(err)
	}
	openMetrics, _ = lib.RenderOpenMetrics()
	if !strings.Contains(string(openMetrics), `{operation="put",result="ok",le="0.000001"} 1 # {} 5e-7 `) {
		t.Errorf("no exemplar without labels in:\n%s", openMetrics)
	}
}

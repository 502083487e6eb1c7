// Package compare holds the Go benchmarks of cachemonitor beside client_golang's histogram, in a module
// of its own so that the cachemonitor module keeps to the standard library: client_golang comes from
// Debian's golang-github-prometheus-client-golang-dev (/usr/share/gocode), without a module proxy.
//
//	cd go/compare && GOPROXY=off CACHE_MONITOR_LIB=$PWD/../../target/release/libcache_monitor.so \
//		go test -run XXX -bench . -count 5
//
// BENCHMARKS.md, section "Go", has the ratios.
package compare

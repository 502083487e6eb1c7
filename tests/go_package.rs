//! The Go package in `go/`: gofmt-clean, `go vet` clean, its tests and examples pass against the
//! library this build made (`CACHE_MONITOR_LIB`), and every benchmark runs (100 iterations, timings not
//! judged) so that none can rot; the same for the benchmarks beside client_golang in `go/compare/`.
//! Go must be installed: without it these tests fail, they do not skip.

mod support;

use support::{cdylib, crate_dir, go_command, run};

/// `go/compare/` builds client_golang from Debian's packaged sources (no module proxy offline).
fn require_client_golang() {
    let sources = std::path::Path::new("/usr/share/gocode/src/github.com/prometheus/client_golang");
    assert!(
        sources.is_dir(),
        "{} missing: install the Debian package `golang-github-prometheus-client-golang-dev` (.ci/run does)",
        sources.display()
    );
}

/// `go` in `dir` with the library of this build. Built without the exporter, the Go package's example of
/// it is left out (build tag `cachemonitor_noexporter`; its tests of the exporter skip themselves).
fn go_with_library(dir: &str, args: &[&str]) -> std::process::Command {
    let mut args = args.to_vec();
    if cfg!(not(feature = "exporter")) && matches!(args.first(), Some(&"test" | &"vet")) {
        args.insert(1, "-tags=cachemonitor_noexporter");
    }
    let mut command = go_command(dir, &args);
    command.env("CACHE_MONITOR_LIB", cdylib());
    command
}

#[test]
fn go_package_is_gofmt_clean_and_vets_clean() {
    let gofmt = run(std::process::Command::new("gofmt")
        .current_dir(crate_dir())
        .args(["-l", "go", "ffi-tests/go"]));
    assert!(
        gofmt.stdout.is_empty(),
        "gofmt would change: {}",
        String::from_utf8_lossy(&gofmt.stdout)
    );
    run(&mut go_command("go", &["vet", "./..."]));
    require_client_golang();
    run(&mut go_command("go/compare", &["vet", "./..."]));
}

#[test]
fn go_package_tests_and_examples_pass_against_this_build() {
    let output = run(&mut go_with_library("go", &["test", "-count=1", "-v", "./..."]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for name in [
        "TestRecordFromManyGoroutinesCountsExactly",
        "TestBatchesFromManyGoroutinesCountExactly",
        "Example",
        "ExampleBatch",
    ] {
        assert!(
            stdout.contains(&format!("--- PASS: {name} ")),
            "{name} did not pass:\n{stdout}"
        );
    }
}

#[test]
fn go_benchmarks_run() {
    let bench = [
        "test",
        "-count=1",
        "-run",
        "XXX",
        "-bench",
        ".",
        "-benchtime",
        "100x",
        "./...",
    ];
    let output = run(&mut go_with_library("go", &bench));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("BenchmarkBatchAdd"), "{stdout}");
    require_client_golang();
    let output = run(&mut go_with_library("go/compare", &bench));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("BenchmarkClientGolangHistogramObserve"), "{stdout}");
}

#[test]
fn go_package_header_is_the_generated_one() {
    let generated = std::fs::read(crate_dir().join("include/cache_monitor.h")).expect("include/cache_monitor.h");
    let copy = std::fs::read(crate_dir().join("go/cache_monitor.h")).expect("go/cache_monitor.h");
    assert!(
        generated == copy,
        "go/cache_monitor.h differs from include/cache_monitor.h: run `go generate` in go/ (it copies the header)"
    );
}

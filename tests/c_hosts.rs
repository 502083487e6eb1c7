//! The C test hosts in `ffi-tests/c/`: compiled with the system `cc` against `include/cache_monitor.h`
//! only, loading the built `libcache_monitor.so` with `dlopen` as a C user would.

mod support;

use std::process::Command;

use support::{assert_promtool_accepts, cdylib, compile_c_host, compile_c_host_linking, run};

#[test]
fn eight_threads_times_a_million_records_are_counted_exactly_and_promtool_accepts_the_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("threaded_counts", dir.path());
    let rendered = dir.path().join("render.prom");
    run(Command::new(&host).arg(cdylib()).arg(&rendered));
    let exposition = std::fs::read_to_string(&rendered).expect("the host wrote its render");
    assert!(exposition.contains("# TYPE cuenv_cache_operation_duration_seconds histogram"));
    assert_promtool_accepts(&exposition);
}

#[test]
fn every_bad_input_gets_its_documented_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("bad_input", dir.path());
    run(Command::new(&host).arg(cdylib()));
}

#[test]
fn a_batch_stops_at_its_first_bad_record_and_the_render_counts_exactly_what_it_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("record_batch", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("counted exactly through mixed batches"));
}

#[test]
fn code_written_against_the_old_names_still_compiles_and_counts_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("deprecated_names", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("cache_monitor_end still work"));
}

#[test]
fn render_alloc_renders_every_format_once_and_free_releases_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("render_alloc", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("every format rendered once"));
}

#[test]
fn buckets_across_resets_a_lowered_pattern_cap_and_a_refused_import_keep_every_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("bookkeeping", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("lose and add nothing"));
}

#[test]
fn exemplars_show_on_their_buckets_and_refused_label_sets_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("exemplars", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("refused label sets changed nothing"));
}

#[test]
fn each_thread_reads_its_own_bounded_last_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("last_error_threads", dir.path());
    let output = run(Command::new(&host).arg(cdylib()));
    assert!(String::from_utf8_lossy(&output.stdout).contains("8 threads each read their own last error"));
}

#[test]
fn frames_durations_nul_keys_and_unmatched_finishes_keep_the_counts_right_and_promtool_accepts_the_render() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("edge_inputs", dir.path());
    let rendered = dir.path().join("render.prom");
    let output = run(Command::new(&host).arg(cdylib()).arg(&rendered));
    assert!(String::from_utf8_lossy(&output.stdout).contains("edge_inputs:"));
    let exposition = std::fs::read_to_string(&rendered).expect("the host wrote its render");
    assert!(
        exposition.contains("{pattern=\"nul\u{fffd}key:*\",result=\"ok\"} 1\n"),
        "{exposition}"
    );
    assert_promtool_accepts(&exposition);
}

#[test]
fn profiling_and_rendering_flamegraphs_leave_the_library_unloadable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("unload_after_flamegraph", dir.path());
    run(Command::new(&host).arg(cdylib()));
}

#[cfg(feature = "exporter")]
#[test]
fn serve_and_serve_stop_through_the_c_abi_leave_no_thread_and_the_library_unloads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("serve_stop", dir.path());
    run(Command::new(&host).arg(cdylib()));
}

#[cfg(not(feature = "exporter"))]
#[test]
fn built_without_the_exporter_every_serve_function_says_so_and_the_rest_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("no_exporter", dir.path());
    run(Command::new(&host).arg(cdylib()));
}

#[test]
fn a_c_host_links_the_static_library() {
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = cdylib().with_file_name("libcache_monitor.a");
    assert!(
        archive.exists(),
        "{} missing: cargo test builds the staticlib with the tests",
        archive.display()
    );
    let linked = [archive.to_str().expect("UTF-8 path"), "-lm", "-ldl", "-lrt"];
    let host = compile_c_host_linking("static_link", dir.path(), &[], &linked);
    let output = run(&mut Command::new(&host));
    assert!(String::from_utf8_lossy(&output.stdout).contains("counted exactly"));
}

//! Every C host in `ffi-tests/c/` under valgrind's memcheck: no memory error (invalid read or write, use
//! of uninitialised memory, bad free) and no definitely lost byte, the library's included, whatever the
//! host does to it (renders freed with `cache_monitor_free`, threads, `dlclose`).
//!
//! Slow (the hosts run tens of times slower, and each flamegraph render parses the debug library's
//! debug information), so the tests are ignored by a plain `cargo test`; `.ci/run` runs them:
//! `cargo test --test valgrind -- --ignored`. The hosts that take a workload size get a smaller one.
//! Valgrind must be installed (Debian package `valgrind`): without it these tests fail, they do not skip.
//!
//! Suppressions (`ffi-tests/c/valgrind.supp`) are only for the C library's and the dynamic loader's own
//! internals, each justified there; none hides an allocation of this library's. A host that `dlclose`s
//! the library (`serve_stop`, `unload_after_flamegraph`) shows as definitely lost whatever the library's
//! statics still held at unload (issue 14, item 11): those tests fail until the library frees it, with
//! valgrind's stacks saying what.

mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use support::{cdylib, compile_c_host, compile_c_host_linking, compile_c_host_with, crate_dir};

/// Runs `host` with `args` under memcheck and fails on any error or definitely lost byte, showing
/// valgrind's report.
fn memcheck(host: &Path, args: &[OsString]) {
    memcheck_with_env(host, args, &[]);
}

/// [`memcheck`] with environment variables.
fn memcheck_with_env(host: &Path, args: &[OsString], env: &[(&str, &Path)]) {
    let suppressions = crate_dir().join("ffi-tests/c/valgrind.supp");
    let output = Command::new("valgrind")
        .envs(env.iter().map(|(name, value)| (*name, *value)))
        .args([
            "--tool=memcheck",
            "--error-exitcode=1",
            "--errors-for-leak-kinds=definite",
            "--leak-check=full",
            // Stacks through the library stay readable after the host dlclose()d it.
            "--keep-debuginfo=yes",
            "--num-callers=40",
        ])
        .arg(format!("--suppressions={}", suppressions.display()))
        .arg(host)
        .args(args)
        .output()
        .expect("valgrind not found: install the Debian package `valgrind` (.ci/run does)");
    let report = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} under memcheck: {}\n--- stdout\n{stdout}\n--- valgrind\n{report}",
        host.display(),
        output.status
    );
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "memory errors:\n{report}");
    assert!(
        report.contains("definitely lost: 0 bytes in 0 blocks") || report.contains("no leaks are possible"),
        "definitely lost bytes:\n{report}"
    );
}

/// The built library as an argument.
fn library() -> OsString {
    cdylib().into_os_string()
}

/// Compiles `name` and runs it under memcheck with the library as its only argument.
fn memcheck_host(name: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    memcheck(&compile_c_host(name, dir.path()), &[library()]);
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn bad_input_under_memcheck() {
    memcheck_host("bad_input");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn record_batch_under_memcheck() {
    memcheck_host("record_batch");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn render_alloc_under_memcheck() {
    memcheck_host("render_alloc");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn bookkeeping_under_memcheck() {
    memcheck_host("bookkeeping");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn set_enabled_under_memcheck() {
    memcheck_host("set_enabled");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn exemplars_under_memcheck() {
    memcheck_host("exemplars");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn deprecated_names_under_memcheck() {
    memcheck_host("deprecated_names");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn last_error_threads_under_memcheck() {
    memcheck_host("last_error_threads");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn unload_after_flamegraph_under_memcheck() {
    memcheck_host("unload_after_flamegraph");
}

#[cfg(feature = "exporter")]
#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn serve_stop_under_memcheck() {
    memcheck_host("serve_stop");
}

#[cfg(not(feature = "exporter"))]
#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn no_exporter_under_memcheck() {
    memcheck_host("no_exporter");
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn edge_inputs_under_memcheck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("edge_inputs", dir.path());
    memcheck(&host, &[library(), dir.path().join("render.prom").into()]);
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn threaded_counts_under_memcheck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("threaded_counts", dir.path());
    // 8 threads x 20,000 records: every path (owned shards, begin/finish, keys) without a million each.
    memcheck(
        &host,
        &[library(), dir.path().join("render.prom").into(), "20000".into()],
    );
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn flamegraph_paths_under_memcheck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host_with("flamegraph_paths", dir.path(), &support::FLAMEGRAPH_HOST_FLAGS);
    let files = ["samples.folded", "time.folded", "flamegraph.svg"].map(|f| dir.path().join(f).into());
    // 3 x 2,000 records, sampled 1 in 100: the same renders on fewer samples.
    let [samples, time, svg] = files;
    memcheck(&host, &[library(), samples, time, svg, "2000".into()]);
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn state_writer_under_memcheck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = compile_c_host("state_writer", dir.path());
    let progress = dir.path().join("progress");
    std::fs::write(&progress, vec![0u8; 4 * 8 * 8]).expect("progress file"); // slots 0 and 1, 8 words each
    let state = dir.path().join("run").join("valgrind.state");
    // 2,000 records into a state file, and a forked child's 200 into the same file.
    let args = [library(), progress.into(), "0".into(), "2000".into(), "200".into()];
    memcheck_with_env(&host, &args, &[("CACHE_MONITOR_STATE", &state)]);
}

#[test]
#[ignore = "slow: .ci/run runs it (cargo test --test valgrind -- --ignored)"]
fn static_link_under_memcheck() {
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = cdylib().with_file_name("libcache_monitor.a");
    let linked = [archive.to_str().expect("UTF-8 path"), "-lm", "-ldl", "-lrt"];
    memcheck(&compile_c_host_linking("static_link", dir.path(), &[], &linked), &[]);
}

//! The Go host in `ffi-tests/go/`: a program using the `cachemonitor` package of `go/` (through a
//! `replace` in its go.mod), which `dlopen`s the built library. It records from 64 goroutines (which
//! move between OS threads) through `Record`, `Begin`/`End`, `Batch` and `RecordWithFrames`, renders
//! and checks exact counts and the Go call site in the flamegraph. Built offline from the standard
//! library only, with Debian's `golang-go`.

mod support;

use std::process::Command;

use support::{cdylib, crate_dir, run};

#[test]
fn go_host_records_from_64_goroutines_and_counts_exactly() {
    let go = Command::new("go").arg("version").output();
    assert!(
        go.as_ref().is_ok_and(|o| o.status.success()),
        "`go` not found or not working ({go:?}): install the Debian package `golang-go` (.ci/run does)"
    );
    // Go's build cache must be writable; HOME may not be. Keep it under target/ so reruns are quick.
    let go_dirs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("go");
    let out = tempfile::tempdir().expect("temp dir");
    let host = out.path().join("gohost");
    run(Command::new("go")
        .current_dir(crate_dir().join("ffi-tests/go"))
        .args(["build", "-o"])
        .arg(&host)
        .arg(".")
        .env("GOCACHE", go_dirs.join("cache"))
        .env("GOPATH", go_dirs.join("path"))
        .env("GOFLAGS", "")
        .env("GO111MODULE", "on")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1"));
    let output = run(Command::new(&host).arg(cdylib()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("64 goroutines x 100000 records counted exactly")
            && stdout.contains("sampled stacks show the Go call site"),
        "{stdout}"
    );
}

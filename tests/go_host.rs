//! The Go host in `ffi-tests/go/`: a program using the `cachemonitor` package of `go/` (through a
//! `replace` in its go.mod), which `dlopen`s the built library. It records from 64 goroutines (which
//! move between OS threads) through `Record`, `Begin`/`End`, `Batch` and `RecordWithFrames`, renders
//! and checks exact counts and the Go call site in the flamegraph. Built offline from the standard
//! library only, with Debian's `golang-go`.

mod support;

use std::process::Command;

use support::{cdylib, go_command, run};

#[test]
fn go_host_records_from_64_goroutines_and_counts_exactly() {
    let out = tempfile::tempdir().expect("temp dir");
    let host = out.path().join("gohost");
    let host_arg = host.to_str().expect("UTF-8 temp path");
    run(&mut go_command("ffi-tests/go", &["build", "-o", host_arg, "."]));
    let output = run(Command::new(&host).arg(cdylib()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("64 goroutines x 100000 records counted exactly")
            && stdout.contains("sampled stacks show the Go call site"),
        "{stdout}"
    );
}

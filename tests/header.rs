//! The committed C header is exactly what cbindgen generates from the current source, and it compiles as
//! C and C++ on its own.

mod support;

use std::process::Command;

use support::{crate_dir, run};

/// What `build.rs` generated for this build.
const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/cache_monitor.h"));

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let committed = run(Command::new("git")
        .current_dir(crate_dir())
        .args(["show", "HEAD:include/cache_monitor.h"]));
    let committed = String::from_utf8(committed.stdout).expect("the header is UTF-8");
    assert!(
        committed == GENERATED,
        "include/cache_monitor.h in HEAD differs from what cbindgen generates now: build, then commit the header"
    );
}

#[test]
fn header_compiles_alone_as_c_and_cpp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("only_header.c");
    std::fs::write(
        &source,
        "#include \"cache_monitor.h\"\nint main(void) { return CACHE_MONITOR_STATUS_OK; }\n",
    )
    .expect("write probe");
    let include = crate_dir().join("include");
    for (compiler, std) in [("cc", "-std=c99"), ("cc", "-std=c11"), ("c++", "-std=c++17")] {
        let mut command = Command::new(compiler);
        command.args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"]);
        if compiler == "c++" {
            command.args(["-x", "c++"]);
        }
        run(command.arg("-I").arg(&include).arg(&source));
    }
}

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

/// The compilers and standards the header must serve, each with its flags.
const COMPILERS: [(&str, &str); 3] = [("cc", "-std=c99"), ("cc", "-std=c11"), ("c++", "-std=c++17")];

/// Compiles `source` (a file including the header) with every compiler of [`COMPILERS`] and `defines`,
/// warnings as errors; returns which compiled.
fn compiles(source: &str, defines: &[&str]) -> Vec<bool> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("probe.c");
    std::fs::write(&path, source).expect("write probe");
    COMPILERS
        .iter()
        .map(|(compiler, std)| {
            let mut command = Command::new(compiler);
            command.args([*std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"]);
            if *compiler == "c++" {
                command.args(["-x", "c++"]);
            }
            command
                .args(defines)
                .arg("-I")
                .arg(crate_dir().join("include"))
                .arg(&path);
            command.output().expect("the compiler runs").status.success()
        })
        .collect()
}

/// Code of ABI 1.5: the outcome codes' old names and `cache_monitor_end`.
const OLD_NAMES: &str = "#include \"cache_monitor.h\"\n\
    int main(void) {\n\
        CacheMonitorResult hit = CACHE_MONITOR_RESULT_HIT;\n\
        return (int)cache_monitor_end(0, hit, 1, 0, 0) + CACHE_MONITOR_RESULT_MISS + CACHE_MONITOR_RESULT_OK\n\
            + CACHE_MONITOR_RESULT_ERROR;\n\
    }\n";

#[test]
fn old_names_compile_quietly_unless_warnings_or_their_removal_are_asked_for() {
    assert_eq!(
        compiles(OLD_NAMES, &[]),
        [true; 3],
        "the old names still compile, without a warning"
    );
    assert_eq!(
        compiles(OLD_NAMES, &["-DCACHE_MONITOR_WARN_DEPRECATED"]),
        [false; 3],
        "asked for, cache_monitor_end warns (an error here, with -Werror)"
    );
    assert_eq!(
        compiles(OLD_NAMES, &["-DCACHE_MONITOR_NO_DEPRECATED"]),
        [false; 3],
        "asked for, the old names are gone"
    );
    let new_names = OLD_NAMES
        .replace("CacheMonitorResult", "CacheMonitorOutcome")
        .replace("CACHE_MONITOR_RESULT_", "CACHE_MONITOR_OUTCOME_")
        .replace("cache_monitor_end", "cache_monitor_finish");
    let strict = ["-DCACHE_MONITOR_NO_DEPRECATED", "-DCACHE_MONITOR_WARN_DEPRECATED"];
    assert_eq!(compiles(&new_names, &strict), [true; 3], "the new names need neither");
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

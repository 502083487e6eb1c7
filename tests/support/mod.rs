//! Shared by the integration tests that drive the built library from outside Rust.
#![allow(dead_code)] // each test binary uses its own subset

pub mod exposition;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The crate's root directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>/`, where this test binary's profile puts the libraries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The `libcache_monitor.so` of the current source, in this test binary's profile.
///
/// `cargo test` compiles the library with all its crate types into `deps/` but only `cargo build` copies
/// them up to `target/<profile>/`, so the current cdylib is the one in `deps/`.
pub fn cdylib() -> PathBuf {
    let lib = profile_dir().join("deps/libcache_monitor.so");
    assert!(
        lib.exists(),
        "{} missing: cargo test builds it with the tests",
        lib.display()
    );
    lib
}

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (is it installed? .ci/run installs it)"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Compiles the C test host `ffi-tests/c/<name>.c` with the system `cc` into `dir`, against the header only.
pub fn compile_c_host(name: &str, dir: &Path) -> PathBuf {
    compile_c_host_with(name, dir, &[])
}

/// [`compile_c_host`] with extra `cc` flags (debug information, frame pointers...).
pub fn compile_c_host_with(name: &str, dir: &Path, extra_flags: &[&str]) -> PathBuf {
    let source = crate_dir().join("ffi-tests/c").join(format!("{name}.c"));
    let binary = dir.join(name);
    run(Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .args(extra_flags)
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .arg("-ldl"));
    binary
}

/// Asserts that `promtool check metrics` (Debian package `prometheus`) accepts `exposition`.
pub fn assert_promtool_accepts(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("promtool reads its input");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool rejected the exposition:\n{}{}\n--- exposition ---\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Resident memory of this process in bytes (`/proc/self/statm`).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as u64
}

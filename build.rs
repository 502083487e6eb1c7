//! Generates `include/cache_monitor.h` from the C ABI in `src/ffi/` with cbindgen.
//!
//! The header is committed; `tests/header.rs` fails when the committed file differs from what this
//! generates, so an ABI change cannot land without its header.
//!
//! It also names the shared object: on ELF targets the cdylib gets the soname `libcache_monitor.so.MAJOR`,
//! MAJOR being the C ABI's major version read from `src/ffi/mod.rs`, as installed libraries are named
//! (`scripts/install.sh`, `cargo cinstall`).

use std::path::{Path, PathBuf};

/// The constant in `src/ffi/mod.rs` that holds the C ABI's major version, the soname's number.
const ABI_MAJOR_CONSTANT: &str = "pub const CACHE_MONITOR_ABI_VERSION_MAJOR: u32 = ";

/// The macro in `src/ffi/mod.rs` whose invocations hold whole `extern "C"` definitions (see
/// `text_outputs` in `src/ffi/boundary.rs`).
const UNWRAPPED_MACRO: &str = "text_outputs! {";

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");

    // cbindgen does not expand macros (only with a nightly compiler), so it would not see the functions
    // defined inside `text_outputs! { ... }`. Their definitions are written out in full inside the
    // invocation, so taking the invocation's first and last lines away leaves plain functions, in place.
    let ffi = std::fs::read_to_string(crate_dir.join("src/ffi/mod.rs")).expect("src/ffi/mod.rs is readable");
    let unwrapped = out_dir.join("ffi_for_cbindgen.rs");
    std::fs::write(&unwrapped, unwrap_macro(&ffi, UNWRAPPED_MACRO)).expect("OUT_DIR is writable");

    // Only the C ABI module is parsed: the rest of the crate's public items are not part of the C ABI.
    // (`with_src` does not follow `mod` declarations, hence both files.)
    let mut builder = cbindgen::Builder::new().with_config(config);
    for source in [unwrapped, crate_dir.join("src/ffi/status.rs")] {
        builder = builder.with_src(source);
    }
    let bindings = match builder.generate() {
        Ok(bindings) => bindings,
        Err(error) => panic!("cbindgen could not generate the header: {error}"),
    };
    bindings.write_to_file(out_dir.join("cache_monitor.h"));
    write_if_changed(&bindings, &crate_dir.join("include/cache_monitor.h"));

    set_soname(&ffi);
    if std::env::var_os("CARGO_FEATURE_CAPI").is_some() {
        // `cargo cinstall` installs the headers it finds under OUT_DIR/capi/include/ (and does not run
        // cbindgen itself: `[package.metadata.capi.header] generation = false`, because its cbindgen
        // would not see the functions inside `text_outputs!`).
        let capi_include = out_dir.join("capi/include");
        std::fs::create_dir_all(&capi_include).expect("OUT_DIR is writable");
        bindings.write_to_file(capi_include.join("cache_monitor.h"));
    }
}

/// `source` without the lines that open (`<macro> {` at the start of a line) and close (the next `}` at
/// the start of a line) each invocation of `macro`; the lines between stay where they are.
fn unwrap_macro(source: &str, opening: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut inside = false;
    for line in source.lines() {
        if !inside && line == opening {
            inside = true;
        } else if inside && line == "}" {
            inside = false;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        !inside,
        "an invocation of `{opening}` in src/ffi/mod.rs is not closed by a `}}` line"
    );
    out
}

/// Rewrites the committed header only when its content changes, so builds do not touch its timestamp.
fn write_if_changed(bindings: &cbindgen::Bindings, path: &Path) {
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    if std::fs::read(path).ok().as_deref() != Some(generated.as_slice()) {
        std::fs::create_dir_all(path.parent().expect("header path has a parent")).expect("include/ is writable");
        std::fs::write(path, &generated).expect("include/cache_monitor.h is writable");
    }
}

/// Gives the cdylib the soname `libcache_monitor.so.MAJOR` on ELF targets, MAJOR from `src/ffi/mod.rs`:
/// a host linked with `-lcache_monitor` then records that name (`DT_NEEDED`) and keeps working across
/// minor versions, and packagers install under it. Only the cdylib: the examples, tests and benchmarks
/// are executables. Left to cargo-c when it builds (the `capi` feature), which sets the same soname
/// from `[package.metadata.capi.library] version`.
///
/// Loading by path is unaffected: glibc's `dlopen` reuses an already loaded object by its soname only
/// when the name asked for is that soname (a path never is), so two copies loaded from two files (a hot
/// swap) stay two.
fn set_soname(ffi: &str) {
    let unix = std::env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|families| families.split(',').any(|f| f == "unix"));
    let apple = std::env::var("CARGO_CFG_TARGET_VENDOR").is_ok_and(|vendor| vendor == "apple");
    if std::env::var_os("CARGO_FEATURE_CAPI").is_some() || apple || !unix {
        return;
    }
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,-soname,libcache_monitor.so.{}",
        abi_major(ffi)
    );
}

/// The C ABI's major version, from its definition in `src/ffi/mod.rs`.
fn abi_major(ffi: &str) -> u32 {
    ffi.lines()
        .find_map(|line| line.strip_prefix(ABI_MAJOR_CONSTANT))
        .and_then(|rest| rest.strip_suffix(';'))
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("src/ffi/mod.rs has no line `{ABI_MAJOR_CONSTANT}<number>;`"))
}

//! Generates `include/cache_monitor.h` from the C ABI in `src/ffi/` with cbindgen.
//!
//! The header is committed; `tests/header.rs` fails when the committed file differs from what this
//! generates, so an ABI change cannot land without its header.

use std::path::{Path, PathBuf};

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

//! Generates `include/cache_monitor.h` from the C ABI in `src/ffi/` with cbindgen.
//!
//! The header is committed; `tests/header.rs` fails when the committed file differs from what this
//! generates, so an ABI change cannot land without its header.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    // Only the C ABI module is parsed: the rest of the crate's public items are not part of the C ABI.
    let mut builder = cbindgen::Builder::new().with_config(config);
    for source in ["src/ffi/mod.rs", "src/ffi/status.rs"] {
        builder = builder.with_src(crate_dir.join(source));
    }
    // (`with_src` does not follow `mod` declarations, hence both files.)
    let bindings = match builder.generate() {
        Ok(bindings) => bindings,
        Err(error) => panic!("cbindgen could not generate the header: {error}"),
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings.write_to_file(out_dir.join("cache_monitor.h"));
    write_if_changed(&bindings, &crate_dir.join("include/cache_monitor.h"));
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

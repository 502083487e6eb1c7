//! The installed C library (`scripts/install.sh`): installed into a temporary prefix, it is a versioned
//! shared object with its soname, the static library, the header and a pkg-config file, and a C host
//! (`ffi-tests/install/host.c`) builds against it with nothing but what `pkg-config` says, linked to the
//! shared object and to the static library.
//!
//! The script builds with the `dev` profile here (the default is `release`, which would compile every
//! dependency once more in CI), in its own target directory, with this test's features.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cache_monitor::ffi::{CACHE_MONITOR_ABI_VERSION_MAJOR, CACHE_MONITOR_ABI_VERSION_MINOR};
use support::{crate_dir, run};

/// The installed library's version: the C ABI's.
fn version() -> String {
    format!("{CACHE_MONITOR_ABI_VERSION_MAJOR}.{CACHE_MONITOR_ABI_VERSION_MINOR}.0")
}

/// The shared object's soname.
fn soname() -> String {
    format!("libcache_monitor.so.{CACHE_MONITOR_ABI_VERSION_MAJOR}")
}

/// The script's feature options for the features this test was built with (`capi` is cargo-c's alone).
fn feature_options() -> Vec<String> {
    let features = [
        ("exporter", cfg!(feature = "exporter")),
        ("caches", cfg!(feature = "caches")),
        ("abi-stable", cfg!(feature = "abi-stable")),
        ("prometheus-collector", cfg!(feature = "prometheus-collector")),
    ];
    if features.iter().all(|(_, on)| *on) {
        return Vec::new();
    }
    let on: Vec<&str> = features.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect();
    let mut options = vec!["--no-default-features".to_owned()];
    if !on.is_empty() {
        options.extend(["--features".to_owned(), on.join(",")]);
    }
    options
}

/// Runs `scripts/install.sh` with `options` (and the dev profile and this test's features).
fn install(options: &[&str]) -> Output {
    run(Command::new("bash")
        .arg(crate_dir().join("scripts/install.sh"))
        .args(["--profile", "dev"])
        .args(feature_options())
        .args(options))
}

/// One install into a prefix under cargo's target directory, shared by the tests: the prefix and the
/// script's stderr.
struct Installed {
    prefix: PathBuf,
    log: String,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Not a temporary directory: a `static` is never dropped, so one would be left behind (a quarter
        // of a gigabyte of debug libraries) by every run. This one is replaced by the next run.
        let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-prefix");
        match std::fs::remove_dir_all(&prefix) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("cannot clear {}: {error}", prefix.display()),
        }
        let output = install(&["--prefix", prefix.to_str().expect("UTF-8 target path")]);
        Installed {
            prefix,
            log: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
}

/// `pkg-config args` against the packages installed under `prefix` (and nothing else); fails clearly
/// when pkg-config is missing.
fn pkg_config(prefix: &Path, args: &[&str]) -> String {
    let version = Command::new("pkg-config").arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`pkg-config` not found or not working ({version:?}): install the Debian package `pkg-config` (.ci/run does)"
    );
    let output = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .env("PKG_CONFIG_LIBDIR", prefix.join("lib/pkgconfig"))
        .args(args));
    String::from_utf8(output.stdout).expect("UTF-8").trim().to_owned()
}

/// `readelf -d` of `file`: its dynamic section.
fn dynamic_section(file: &Path) -> String {
    let output = Command::new("readelf")
        .arg("-d")
        .arg(file)
        .output()
        .expect("readelf not found: install the Debian package `binutils` (gcc brings it)");
    assert!(output.status.success(), "readelf -d {}: {output:?}", file.display());
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The names a dynamic section lists as `tag` (`NEEDED`, `SONAME`): the text between the brackets of
/// `Shared library: [name]` or `Library soname: [name]`.
fn dynamic_names(section: &str, tag: &str) -> Vec<String> {
    section
        .lines()
        .filter(|line| line.contains(&format!("({tag})")))
        .filter_map(|line| Some(line[line.find('[')? + 1..line.rfind(']')?].to_owned()))
        .collect()
}

/// Splits a pkg-config answer into compiler arguments.
fn words(flags: &str) -> Vec<String> {
    flags.split_whitespace().map(str::to_owned).collect()
}

/// Compiles `ffi-tests/install/host.c` into `binary` with `flags` after the source.
fn compile_host(binary: &Path, flags: &[String]) {
    run(Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg(crate_dir().join("ffi-tests/install/host.c"))
        .arg("-o")
        .arg(binary)
        .args(flags));
}

#[test]
fn the_prefix_holds_the_versioned_shared_object_its_links_the_archive_the_header_and_the_pc_file() {
    let lib = installed().prefix.join("lib");
    let full = format!("libcache_monitor.so.{}", version());
    let shared = lib.join(&full);
    assert!(
        std::fs::symlink_metadata(&shared).expect("the shared object").is_file(),
        "{} is the file itself",
        shared.display()
    );
    for link in [soname(), "libcache_monitor.so".to_owned()] {
        assert_eq!(
            std::fs::read_link(lib.join(&link)).expect("a symbolic link"),
            PathBuf::from(&full),
            "{link}"
        );
    }
    assert_eq!(
        dynamic_names(&dynamic_section(&shared), "SONAME"),
        [soname()],
        "the soname is embedded"
    );
    assert!(
        std::fs::metadata(lib.join("libcache_monitor.a"))
            .expect("the archive")
            .len()
            > 0
    );
    assert_eq!(
        std::fs::read(installed().prefix.join("include/cache_monitor.h")).expect("the installed header"),
        std::fs::read(crate_dir().join("include/cache_monitor.h")).expect("the header"),
    );
}

#[test]
fn pkg_config_describes_the_install_and_its_static_libraries_are_what_rustc_reported() {
    let prefix = &installed().prefix;
    let p = prefix.display();
    assert_eq!(pkg_config(prefix, &["--modversion", "cache_monitor"]), version());
    assert_eq!(
        pkg_config(prefix, &["--cflags", "cache_monitor"]),
        format!("-I{p}/include")
    );
    assert_eq!(
        pkg_config(prefix, &["--libs", "cache_monitor"]),
        format!("-L{p}/lib -lcache_monitor")
    );
    let reported = installed()
        .log
        .lines()
        .find_map(|line| line.strip_prefix("note: native-static-libs: "))
        .unwrap_or_else(|| {
            panic!(
                "rustc's native-static-libs note in the script's output:\n{}",
                installed().log
            )
        });
    assert!(!reported.trim().is_empty());
    assert_eq!(
        pkg_config(prefix, &["--static", "--libs", "cache_monitor"]),
        format!("-L{p}/lib -lcache_monitor {}", reported.trim())
    );
}

#[test]
fn a_c_host_built_with_pkg_config_alone_runs_against_the_shared_object_by_its_soname() {
    let prefix = &installed().prefix;
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("host");
    compile_host(
        &host,
        &words(&pkg_config(prefix, &["--cflags", "--libs", "cache_monitor"])),
    );
    let needed = dynamic_names(&dynamic_section(&host), "NEEDED");
    assert!(needed.contains(&soname()), "the host needs {}: {needed:?}", soname());

    let output = run(Command::new(&host).env("LD_LIBRARY_PATH", prefix.join("lib")));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "cache_monitor {CACHE_MONITOR_ABI_VERSION_MAJOR}.{CACHE_MONITOR_ABI_VERSION_MINOR}: 750 hits and 250 misses counted\n"
        )
    );
}

#[test]
fn a_c_host_links_the_static_library_with_pkg_config_static_libs() {
    let prefix = &installed().prefix;
    let dir = tempfile::tempdir().expect("temp dir");
    let host = dir.path().join("host");
    // With the shared object beside it, `-lcache_monitor` would pick the shared object: the archive is
    // named by its file name, as the README shows.
    let libs: Vec<String> = words(&pkg_config(prefix, &["--static", "--libs", "cache_monitor"]))
        .into_iter()
        .map(|flag| {
            if flag == "-lcache_monitor" {
                "-l:libcache_monitor.a".to_owned()
            } else {
                flag
            }
        })
        .collect();
    let mut flags = words(&pkg_config(prefix, &["--cflags", "cache_monitor"]));
    flags.extend(libs);
    compile_host(&host, &flags);
    let needed = dynamic_names(&dynamic_section(&host), "NEEDED");
    assert!(
        needed.iter().all(|name| !name.starts_with("libcache_monitor")),
        "linked statically: {needed:?}"
    );

    // No LD_LIBRARY_PATH: the library is inside the host.
    let output = run(&mut Command::new(&host));
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": 750 hits and 250 misses counted\n"));
}

#[test]
fn a_packager_stages_under_destdir_and_the_pc_file_names_the_real_prefix() {
    installed(); // built once; this install only copies
    let stage = tempfile::tempdir().expect("temp dir");
    install(&[
        "--destdir",
        stage.path().to_str().expect("UTF-8 temp path"),
        "--prefix",
        "/usr",
        "--libdir",
        "lib/x86_64-linux-gnu",
    ]);
    let lib = stage.path().join("usr/lib/x86_64-linux-gnu");
    for file in [
        format!("libcache_monitor.so.{}", version()),
        soname(),
        "libcache_monitor.so".to_owned(),
        "libcache_monitor.a".to_owned(),
    ] {
        assert!(lib.join(&file).exists(), "{file} under {}", lib.display());
    }
    assert!(stage.path().join("usr/include/cache_monitor.h").exists());
    let pc = std::fs::read_to_string(lib.join("pkgconfig/cache_monitor.pc")).expect("the .pc file");
    let head: Vec<&str> = pc.lines().take(3).collect();
    assert_eq!(
        head,
        [
            "prefix=/usr",
            "libdir=${prefix}/lib/x86_64-linux-gnu",
            "includedir=${prefix}/include"
        ]
    );
}

#[test]
fn cargo_c_metadata_installs_the_same_version_as_the_script() {
    // `cargo cinstall` takes the library's and the .pc file's versions from Cargo.toml, the script from
    // the header: both must be the C ABI's.
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).expect("Cargo.toml");
    for table in ["[package.metadata.capi.library]", "[package.metadata.capi.pkg_config]"] {
        let section = manifest
            .split_once(table)
            .map(|(_, rest)| rest.split("\n[").next().unwrap_or(rest))
            .unwrap_or_else(|| panic!("Cargo.toml has no {table}"));
        assert!(
            section
                .lines()
                .any(|line| line == format!("version = \"{}\"", version())),
            "{table} says version = \"{}\" (the C ABI's version):{section}",
            version()
        );
    }
}

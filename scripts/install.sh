#!/usr/bin/env bash
# Builds the C library and installs it as a C library is installed, with only cargo and the shell (what
# `cargo cinstall` does, without needing cargo-c):
#
#   $DESTDIR$PREFIX/lib/libcache_monitor.so.MAJOR.MINOR.0    the shared object, soname libcache_monitor.so.MAJOR
#   $DESTDIR$PREFIX/lib/libcache_monitor.so.MAJOR            -> libcache_monitor.so.MAJOR.MINOR.0
#   $DESTDIR$PREFIX/lib/libcache_monitor.so                  -> libcache_monitor.so.MAJOR.MINOR.0
#   $DESTDIR$PREFIX/lib/libcache_monitor.a                   the static library
#   $DESTDIR$PREFIX/include/cache_monitor.h                  the header
#   $DESTDIR$PREFIX/lib/pkgconfig/cache_monitor.pc           for `pkg-config --cflags --libs cache_monitor`
#
# The library's version is the C ABI's (MAJOR.MINOR.0 from include/cache_monitor.h), not the crate's: the
# soname changes exactly when the ABI breaks. The .pc file's Libs.private lists the system libraries the
# static library needs, as rustc reports them (`--print native-static-libs`) for this very build.
#
# The build has a target directory of its own (default: target/install under cargo's target directory):
# its extra rustc flag would otherwise make `cargo build` and this script rebuild the crate in turn.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--libdir DIR] [--includedir DIR]
                          [--pkgconfigdir DIR] [--profile NAME] [--target-dir DIR]
                          [--features LIST] [--no-default-features]

  --prefix DIR          where the library will live (default /usr/local); written into the .pc file
  --destdir DIR         staging root prepended to every installed path, not written anywhere (packagers)
  --libdir DIR          libraries, relative to the prefix or absolute (default lib)
  --includedir DIR      the header, relative to the prefix or absolute (default include)
  --pkgconfigdir DIR    the .pc file, relative to the prefix or absolute (default LIBDIR/pkgconfig)
  --profile NAME        cargo profile to build (default release)
  --target-dir DIR      cargo target directory for this build (default ${CARGO_TARGET_DIR:-target}/install)
  --features LIST       cargo features to build with (comma-separated)
  --no-default-features build without the default features (see README, "Features")

The environment's DESTDIR and PREFIX are the defaults of --destdir and --prefix; CARGO names cargo.
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
libdir=lib
includedir=include
pkgconfigdir=
profile=release
target_dir=${CARGO_TARGET_DIR:-$root/target}/install
cargo_features=()

while [ $# -gt 0 ]; do
    option=$1
    shift
    case $option in
        -h | --help)
            usage
            exit 0
            ;;
        --no-default-features)
            cargo_features+=(--no-default-features)
            continue
            ;;
        --prefix | --destdir | --libdir | --includedir | --pkgconfigdir | --profile | --target-dir | --features)
            [ $# -gt 0 ] || die "$option needs a value (--help lists the options)"
            value=$1
            shift
            ;;
        *) die "unknown option $option (--help lists the options)" ;;
    esac
    case $option in
        --prefix) prefix=$value ;;
        --destdir) destdir=$value ;;
        --libdir) libdir=$value ;;
        --includedir) includedir=$value ;;
        --pkgconfigdir) pkgconfigdir=$value ;;
        --profile) profile=$value ;;
        --target-dir) target_dir=$value ;;
        --features) cargo_features+=(--features "$value") ;;
    esac
done

case $prefix in
    /*) ;;
    *) die "--prefix must be an absolute path, not $prefix" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/

# A directory relative to the prefix becomes absolute; the .pc file names it through ${prefix} or
# ${libdir} when it is under them, so that `pkg-config --define-prefix` can relocate the install.
under_prefix() {
    case $1 in
        /*) echo "$1" ;;
        *) echo "${prefix%/}/$1" ;;
    esac
}
libdir=$(under_prefix "$libdir")
includedir=$(under_prefix "$includedir")
if [ -z "$pkgconfigdir" ]; then
    pkgconfigdir=$libdir/pkgconfig
else
    pkgconfigdir=$(under_prefix "$pkgconfigdir")
fi
pc_path() {
    case $1 in
        "${prefix%/}"/*) echo "\${prefix}/${1#"${prefix%/}"/}" ;;
        *) echo "$1" ;;
    esac
}

# The library's version: the C ABI's, from the header that is installed with it.
header=$root/include/cache_monitor.h
abi_part() {
    sed -n "s/^#define CACHE_MONITOR_ABI_VERSION_$1 \([0-9][0-9]*\)\$/\1/p" "$header"
}
major=$(abi_part MAJOR)
minor=$(abi_part MINOR)
[ -n "$major" ] && [ -n "$minor" ] || die "$header does not define CACHE_MONITOR_ABI_VERSION_MAJOR and _MINOR"
version=$major.$minor.0
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

# Build. rustc prints the static library's system libraries when asked; cargo replays the note when the
# build is already fresh.
case $profile in
    dev | test) profile_dir=debug ;;
    bench) profile_dir=release ;;
    *) profile_dir=$profile ;;
esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "install.sh: building the library ($profile profile, in $target_dir)" >&2
# cargo's messages go to stderr as usual and into the log (pipefail: the pipeline fails when cargo does).
if ! { "${CARGO:-cargo}" rustc --manifest-path "$root/Cargo.toml" --lib --profile "$profile" \
    --target-dir "$target_dir" ${cargo_features[@]+"${cargo_features[@]}"} \
    -- --print native-static-libs 2>&1 1>&3 | tee "$log" >&2; } 3>&1; then
    die "the build failed"
fi
private_libs=$(sed -n 's/^note: native-static-libs: //p' "$log" | tail -n 1)
[ -n "$private_libs" ] || die "rustc did not report the static library's native libraries"
built=$target_dir/$profile_dir
for file in libcache_monitor.so libcache_monitor.a; do
    [ -f "$built/$file" ] || die "$built/$file was not built"
done

# Install.
lib_dest=$destdir$libdir
include_dest=$destdir$includedir
pc_dest=$destdir$pkgconfigdir
shared=libcache_monitor.so.$version
install -d "$lib_dest" "$include_dest" "$pc_dest"
install -m 755 "$built/libcache_monitor.so" "$lib_dest/$shared"
ln -sfn "$shared" "$lib_dest/libcache_monitor.so.$major"
ln -sfn "$shared" "$lib_dest/libcache_monitor.so"
install -m 644 "$built/libcache_monitor.a" "$lib_dest/libcache_monitor.a"
install -m 644 "$header" "$include_dest/cache_monitor.h"
pc_libdir=$(pc_path "$libdir")
pc_includedir=$(pc_path "$includedir")
cat >"$pc_dest/cache_monitor.pc" <<EOF
prefix=$prefix
libdir=$pc_libdir
includedir=$pc_includedir

Name: cache_monitor
Description: $description
Version: $version
Libs: -L\${libdir} -lcache_monitor
Libs.private: $private_libs
Cflags: -I\${includedir}
EOF
chmod 644 "$pc_dest/cache_monitor.pc"

echo "install.sh: installed cache_monitor $version (soname libcache_monitor.so.$major) under $destdir$prefix" >&2
for file in "$lib_dest/$shared" "$lib_dest/libcache_monitor.so.$major" "$lib_dest/libcache_monitor.so" \
    "$lib_dest/libcache_monitor.a" "$include_dest/cache_monitor.h" "$pc_dest/cache_monitor.pc"; do
    echo "  $file"
done

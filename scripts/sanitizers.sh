#!/usr/bin/env bash
# ThreadSanitizer and Miri, as CI runs them (`.ci/run` calls this). Both need a nightly toolchain and a
# component of it; without them this prints a loud SKIPPED line for each and exits 0 (nothing is
# installed here: CI machines may have no internet but crates.io).
#
# - ThreadSanitizer (`-Zsanitizer=thread`, the standard library rebuilt instrumented with `-Zbuild-std`,
#   which needs the nightly `rust-src` component): tests/hot_swap.rs (four recording threads, a host
#   swapping library copies under them) and the unit tests of every lock-free protocol (thread claim,
#   double buffer, delta ring, window flush, pattern table, exemplar slot, stack table, active table)
#   and of the recorder. TSan does not model standalone fences (shared/PITFALLS.md), but the protocols
#   that rely on fences (the seqlocks) guard atomics only, and TSan reports races on plain memory: a
#   report is a bug, not a fence it failed to see.
# - Miri (the nightly `miri` component, which also needs `rust-src`): the pure-Rust unit tests that touch
#   no file, no FFI, no thread and no inline assembly: label escaping, the configuration, state
#   snapshots, the bucket layouts (zeroed atomics from `backing::zeroed_box`), latency and totals.
#
#   scripts/sanitizers.sh            both
#   scripts/sanitizers.sh tsan       one of them (tsan or miri)
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
if [ $# -gt 0 ]; then run=("$@"); else run=(tsan miri); fi

skipped() {
    echo "################################################################################"
    echo "# sanitizers: SKIPPED: $1"
    echo "################################################################################"
}

has_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }
has_component() { rustup component list --toolchain nightly --installed 2>/dev/null | grep -q "^$1"; }

tsan() {
    if ! has_nightly; then
        skipped "ThreadSanitizer: no nightly toolchain (rustup toolchain install nightly --component rust-src)"
        return
    fi
    if ! has_component rust-src; then
        skipped "ThreadSanitizer: the nightly toolchain has no rust-src component, which -Zbuild-std needs (rustup component add rust-src --toolchain nightly)"
        return
    fi
    if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
        skipped "ThreadSanitizer: this script runs it on x86_64 Linux only"
        return
    fi
    echo "sanitizers: ThreadSanitizer on tests/hot_swap.rs and the lock-free protocols' unit tests"
    # Its own target directory: every crate is rebuilt with the sanitizer. RUSTFLAGS reach only the
    # target's crates (--target), not build scripts and proc macros. halt_on_error: the first report fails.
    export CARGO_TARGET_DIR=target/tsan
    export RUSTFLAGS="-Zsanitizer=thread"
    export RUSTDOCFLAGS="-Zsanitizer=thread"
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
    local cargo=(cargo +nightly test -Zbuild-std --target "$target")
    set -x
    "${cargo[@]}" --test hot_swap
    "${cargo[@]}" --lib -- recording::thread_claim recording::double_buffer recording::delta_ring \
        recording::window_rings recording::patterns recording::exemplars recording::recorder \
        profiler::stack_table profiler::active_table
    set +x
}

miri() {
    if ! has_nightly; then
        skipped "Miri: no nightly toolchain (rustup toolchain install nightly --component miri,rust-src)"
        return
    fi
    if ! has_component miri || ! has_component rust-src; then
        skipped "Miri: the nightly toolchain lacks the miri or rust-src component (rustup component add miri rust-src --toolchain nightly)"
        return
    fi
    echo "sanitizers: Miri on the pure-Rust unit tests"
    # Without the default features: fewer crates for Miri to build, and none of these tests needs them.
    export CARGO_TARGET_DIR=target/miri
    set -x
    cargo +nightly miri setup
    cargo +nightly miri test --no-default-features --lib -- render::escape config:: state::snapshot \
        recording::buckets recording::latency recording::totals
    set +x
}

for one in "${run[@]}"; do
    case "$one" in
        tsan) tsan ;;
        miri) miri ;;
        *)
            echo "sanitizers: unknown check '$one' (tsan or miri)" >&2
            exit 2
            ;;
    esac
done

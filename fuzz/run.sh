#!/usr/bin/env bash
# Fuzzing as CI runs it (`.ci/run` calls this): every target for FUZZ_SECONDS (default 30) seconds, side
# by side, starting from the corpus kept in fuzz/corpus/<target>, failing on any crash or invariant
# violation. New inputs go to a scratch directory, so the checkout stays clean; a crashing input is kept
# in fuzz/artifacts/<target>/ and printed.
#
# cargo-fuzz needs a nightly toolchain (libFuzzer's coverage instrumentation). Without one this says
# loudly that fuzzing was SKIPPED and only checks, with stable, that the targets still build.
#
#   fuzz/run.sh                                   every target, 30 s each
#   FUZZ_SECONDS=300 fuzz/run.sh configure        one target, longer
#   FUZZ_SANITIZER=address fuzz/run.sh            with AddressSanitizer (slower to build and to run)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
all_targets=(configure import_state import_state_edits record_with_frames http_request)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi
# The build is most of this step's time (about 220 CPU seconds with AddressSanitizer, 160 without; the
# runs take 30 s, cargo-fuzz's install 50 CPU seconds), so CI builds without a sanitizer and with 16
# codegen units instead of cargo-fuzz's one: a panic or a failed check is caught all the same, only
# memory errors that do not crash are not. FUZZ_SANITIZER=address (cargo fuzz's default) to have them.
# The same flags must go to `build` and `run`, or `run` builds again.
build_flags=(--codegen-units 16 --sanitizer "${FUZZ_SANITIZER:-none}")
if [ -n "${FUZZ_FEATURES:-}" ]; then build_flags+=(--features "$FUZZ_FEATURES"); fi

cargo fmt --check --manifest-path fuzz/Cargo.toml

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "################################################################################"
    echo "# fuzz: SKIPPED: no nightly toolchain is installed, so no target was run."
    echo "# (rustup toolchain install nightly --profile minimal, then fuzz/run.sh)"
    echo "# Checking with stable that the fuzz targets still build."
    echo "################################################################################"
    cargo check --manifest-path fuzz/Cargo.toml --bins --locked
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ ${#targets[@]} -eq 1 ]; then
    cargo +nightly fuzz build "${build_flags[@]}" "${targets[0]}"
else
    cargo +nightly fuzz build "${build_flags[@]}"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# The targets run side by side (each for the whole time), so the step takes FUZZ_SECONDS, not five
# times that; libFuzzer uses one core per target.
pids=()
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "fuzz/corpus/$target"
    # The first directory receives new inputs; the kept corpus is only read. An input running longer
    # than -timeout is reported as a hang.
    cargo +nightly fuzz run "${build_flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$scratch/$target.log" 2>&1 &
    pids+=($!)
done
failed=()
for i in "${!targets[@]}"; do
    target="${targets[$i]}"
    if wait "${pids[$i]}"; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log")
        echo "fuzz: $target: ${runs:-?} inputs in ${seconds}s, no crash"
    else
        echo "fuzz: $target: CRASHED"
        grep -E -A4 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|^SUMMARY' "$scratch/$target.log" | head -n 60 || true
        tail -n 20 "$scratch/$target.log"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (crashing inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash: ${targets[*]}"

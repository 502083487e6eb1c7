#!/usr/bin/env bash
# Instructions per record, counted by valgrind's callgrind: a figure that does not depend on the machine
# (unlike the timed benchmarks). Builds the release library, runs benches/callgrind/record_loop.c (a C host
# calling cache_monitor_record through dlopen) with two record counts, without a key and with one, and
# benches/callgrind/batch_loop.c (the same records, 256 per cache_monitor_record_batch call), and writes
# the differences per record to target/callgrind/instructions.json for benches/report.py.
#
# usage: benches/callgrind.sh        (needs valgrind and a C compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/callgrind
mkdir -p "$out"
cargo build --release --lib --quiet
library="$PWD/target/release/libcache_monitor.so"
cc -O2 -Wall -Werror -Iinclude -Ibenches/callgrind benches/callgrind/record_loop.c -ldl -o "$out/record_loop"
cc -O2 -Wall -Werror -Iinclude -Ibenches/callgrind benches/callgrind/batch_loop.c -ldl -o "$out/batch_loop"

# Total instructions (Ir) of one run of the host with `count` records and the optional key; with
# STATE_FILE set, the process-wide monitor counts into that state file (CACHE_MONITOR_STATE).
instructions() {
    local count=$1 key=${2:-} host=${HOST:-record_loop}
    local file="$out/callgrind.out.$host.$count${key:+.key}${STATE_FILE:+.state}"
    rm -f "${STATE_FILE:-/nonexistent}"
    CACHE_MONITOR_STATE="${STATE_FILE:-}" valgrind --tool=callgrind --callgrind-out-file="$file" \
        "$out/$host" "$library" "$count" ${key:+"$key"} >/dev/null 2>&1
    awk '/^summary:/ {print $2}' "$file"
}

# Multiples of the batch host's 256 records a call.
small=102400
large=307200
per_record() {
    local a b
    a=$(instructions "$small" "${1:-}")
    b=$(instructions "$large" "${1:-}")
    python3 -c "print(round(($b - $a) / ($large - $small), 1))"
}
no_key=$(per_record)
with_key=$(per_record "user:12345:profile")
state_dir=$(mktemp -d)
trap 'rm -rf "$state_dir"' EXIT
in_file=$(STATE_FILE="$state_dir/callgrind.state" per_record)
batched=$(HOST=batch_loop per_record)
printf '{"record_without_key": %s, "record_with_key": %s, "record_into_state_file": %s, "record_batched": %s, "key": "user:12345:profile"}\n' \
    "$no_key" "$with_key" "$in_file" "$batched" >"$out/instructions.json"
echo "callgrind: instructions per record: $no_key without a key, $with_key with the key user:12345:profile," \
    "$in_file without a key into a state file, $batched batched (256 a call, the host's loop included)"
